"""Snapshot indexing, workload resolution and host resolution."""

from kubectl_mesh.snapshot import Snapshot, WorkloadRef, flatten, resolve_host
from tests.helpers import deployment, deployment_with_pods, namespace, pod


def test_flatten_unpacks_nested_lists():
    doc = {"kind": "List", "items": [{"kind": "PodList", "items": [pod("a"), pod("b")]}, namespace("x")]}
    assert [o["kind"] for o in flatten(doc)] == ["Pod", "Pod", "Namespace"]
    assert flatten("not a dict") == []


def test_objects_without_namespace_land_in_default():
    snap = Snapshot([{"kind": "Service", "metadata": {"name": "s"}}])
    assert snap.get("Service", "default", "s") is not None


def test_select_pods_by_labels_intersects_the_index():
    pods = [pod("a", labels={"app": "web", "version": "v1"}), pod("b", labels={"app": "web", "version": "v2"}),
            pod("c", labels={"app": "api", "version": "v1"}), pod("d", "other", labels={"app": "web"})]
    snap = Snapshot(pods)
    assert [p["metadata"]["name"] for p in snap.select_pods("my-app", {"app": "web"})] == ["a", "b"]
    assert [p["metadata"]["name"] for p in snap.select_pods("my-app", {"app": "web", "version": "v2"})] == ["b"]
    assert snap.select_pods("my-app", {"app": "nothing"}) == []
    assert len(snap.select_pods("my-app", {})) == 3


def test_topology_labels_match_through_the_node():
    node = {"kind": "Node", "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "us-west-1a"}}}
    web = pod("a", labels={"app": "web"}, node="n1")
    snap = Snapshot([node, web])
    wanted = {"app": "web", "topology.kubernetes.io/zone": "us-west-1a"}
    assert snap.select_pods("my-app", wanted, with_node_labels=True) == [web]
    assert snap.select_pods("my-app", wanted) == []
    assert snap.select_pods("my-app", {"topology.kubernetes.io/zone": "eu"}, with_node_labels=True) == []


def test_workload_of_follows_replicaset_owner():
    objs = deployment_with_pods("web", pods=2)
    snap = Snapshot(objs)
    refs = {snap.workload_of(p) for p in snap.pods("my-app")}
    assert refs == {WorkloadRef("Deployment", "my-app", "web")}


def test_workload_of_without_replicaset_uses_pod_template_hash():
    objs = [o for o in deployment_with_pods("web") if o["kind"] == "Pod"]
    snap = Snapshot(objs)
    assert snap.workload_of(objs[0]) == WorkloadRef("Deployment", "my-app", "web")


def test_workload_of_manifest_pod_matches_selector():
    web = pod("web-x", labels={"app": "web"})
    snap = Snapshot([deployment("web"), web])
    assert snap.workload_of(web) == WorkloadRef("Deployment", "my-app", "web")
    assert snap.workload_of(pod("loner", labels={"app": "zzz"})) is None


def test_statefulset_owner_is_direct():
    db = pod("db-0", owner=("StatefulSet", "db"))
    assert Snapshot([db]).workload_of(db) == WorkloadRef("StatefulSet", "my-app", "db")


def test_pods_of_workload():
    objs = deployment_with_pods("web", pods=3) + deployment_with_pods("api", pods=1)
    snap = Snapshot(objs)
    web = snap.get("Deployment", "my-app", "web")
    assert len(snap.pods_of(web)) == 3


def test_resolve_host_follows_istio_short_name_rule():
    assert resolve_host("reviews", "default") == "reviews.default.svc.cluster.local"
    assert resolve_host("reviews.default.svc.cluster.local", "x") == "reviews.default.svc.cluster.local"
    assert resolve_host("reviews.other", "default") == "reviews.other"
    assert resolve_host("*", "default") == "*"


def test_service_for_host():
    svc = {"kind": "Service", "metadata": {"name": "reviews", "namespace": "default"}}
    snap = Snapshot([svc])
    assert snap.service_for_host("reviews", "default") is svc
    assert snap.service_for_host("reviews.default.svc.cluster.local", "elsewhere") is svc
    assert snap.service_for_host("reviews", "elsewhere") is None
    assert snap.service_for_host("example.com", "default") is None


def test_namespace_names_include_namespaces_of_objects():
    snap = Snapshot([namespace("a"), pod("p", "b")])
    assert snap.namespace_names() == ["a", "b"]
