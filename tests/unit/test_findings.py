"""Each check of diagnose, firing and not firing, over plain snapshots."""

from __future__ import annotations

import copy

import pytest

from kubectl_mesh import findings
from kubectl_mesh.manifests import Manifests
from kubectl_mesh.manifests import snapshot as manifest_snapshot
from kubectl_mesh.snapshot import Snapshot
from tests.helpers import deployment, deployment_with_pods, namespace, pod

NS = "my-app"
ENABLED = namespace(NS, {"istio-injection": "enabled"})


def found(objects, *, check=None, scope=None, offline=False):
    objects = copy.deepcopy(list(objects))
    snap = manifest_snapshot(Manifests(objects)) if offline else Snapshot(objects, scope=scope)
    result = findings.run(snap)
    if check:
        result = [f for f in result if f.id == check]
    return result


def brief(result):
    return [(f.id, f.level, str(f.object)) for f in result]


def pa(name="strict-mtls", ns=NS, mode="STRICT", selector=None, created="2024-01-01T00:00:00Z", ports=None):
    spec = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = ports
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


def service(name="my-app", ns=NS, selector=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name} if selector is None else selector, "ports": [{"port": 80}]}}


def dr(name="my-app", host="my-app", subsets=(("stable", "v1"), ("canary", "v2")), ns=NS, policy=None,
       created="2024-01-01T00:00:00Z"):
    spec = {"host": host}
    if subsets is not None:
        spec["subsets"] = [{"name": n, "labels": {"version": v} if isinstance(v, str) else v} for n, v in subsets]
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


def vs(name="my-app", routes=(("my-app", "stable", 90), ("my-app", "canary", 10)), ns=NS, mirror=None, kind="http"):
    route = [{"destination": {"host": h, **({"subset": s} if s else {})}, **({"weight": w} if w is not None else {})}
             for h, s, w in routes]
    rule = {"route": route}
    if mirror:
        rule["mirror"] = mirror
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns}, "spec": {"hosts": ["my-app"], kind: [rule]}}


def versioned(version, count=1, ready=True, sidecar="container", app="my-app", ns=NS, node="node-1"):
    return [pod(f"{app}-{version}-{i}", ns, labels={"app": app, "version": version}, sidecar=sidecar,
                owner=("ReplicaSet", f"{app}-{version}-5d9f8c7b6"), ready=ready, node=node) for i in range(count)]


CANARY_OK = [ENABLED, service(), dr(), vs(), *versioned("v1", 3), *versioned("v2")]


def test_every_check_has_a_unique_stable_id_and_category():
    ids = [c.id for c in findings.CHECKS]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("MESH-") for i in ids)
    assert {c.istio_code for c in findings.CHECKS} >= {"IST0101", "IST0102", "IST0103", "IST0123", "IST0125",
                                                      "IST0173"}


def test_a_healthy_canary_namespace_has_no_findings():
    assert found(CANARY_OK) == []


# -- injection ----------------------------------------------------------------------------
def test_namespace_not_injected_fires_only_where_workloads_run():
    objs = [namespace("web"), *deployment_with_pods("site", "web"), namespace("empty"),
            namespace("kube-system"), *deployment_with_pods("dns", "kube-system"),
            namespace("off", {"istio-injection": "disabled"}), *deployment_with_pods("x", "off"),
            namespace("amb", {"istio.io/dataplane-mode": "ambient"}), *deployment_with_pods("y", "amb")]
    result = found(objs, check="MESH-INJ-001")
    assert brief(result) == [("MESH-INJ-001", "info", "Namespace web")]
    assert "deployment/site (2 pods)" in result[0].message
    assert result[0].istio_code == "IST0102"
    assert "kubectl mesh enable web" in result[0].fix


def test_namespace_not_injected_in_manifests_fires_for_declared_namespaces():
    assert brief(found([namespace("bar")], check="MESH-INJ-001", offline=True)) == [
        ("MESH-INJ-001", "info", "Namespace bar")]
    assert found([namespace("bar")], check="MESH-INJ-001") == []  # online: an empty namespace is fine


def test_pod_missing_proxy_names_the_workload_to_restart():
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container"), *deployment_with_pods("api"),
            pod("debug", NS)]
    result = found(objs, check="MESH-INJ-002")
    assert brief(result) == [("MESH-INJ-002", "warning", "Deployment my-app/api"),
                             ("MESH-INJ-002", "warning", "Pod my-app/debug")]
    assert "2 of 2 pods of deployment/api have no istio-proxy" in result[0].message
    assert result[0].fix == "kubectl rollout restart deployment/api -n my-app"
    assert result[0].details["pods"] == ["api-5d9f8c7b6-p0", "api-5d9f8c7b6-p1"]


def test_pod_missing_proxy_not_for_opted_out_unlabelled_or_system_pods():
    objs = [ENABLED, pod("optout", NS, labels={"sidecar.istio.io/inject": "false"}),
            namespace("plain"), pod("p", "plain"),
            pod("istiod-canary", "istio-system", labels={"istio.io/rev": "canary"})]
    assert found(objs, check="MESH-INJ-002") == []


def test_multiple_injection_labels():
    objs = [namespace("busted", {"istio-injection": "enabled", "istio.io/rev": "canary"}),
            namespace("fine", {"istio-injection": "disabled", "istio.io/rev": "canary"})]
    result = found(objs, check="MESH-INJ-003")
    assert brief(result) == [("MESH-INJ-003", "warning", "Namespace busted")]
    assert "istio-injection=enabled wins" in result[0].message
    assert result[0].fix.endswith("kubectl label namespace busted istio.io/rev-")


# -- mTLS -----------------------------------------------------------------------------------
def test_strict_mtls_on_pods_without_sidecar_is_an_error():
    objs = [namespace(NS), pa(), *deployment_with_pods("web")]
    result = found(objs, check="MESH-MTLS-001")
    assert brief(result) == [("MESH-MTLS-001", "error", "Deployment my-app/web")]
    assert "PeerAuthentication my-app/strict-mtls, namespace-wide" in result[0].message
    assert "namespace my-app is not labelled for injection" in result[0].message
    assert "kubectl mesh enable my-app" in result[0].fix


def test_strict_mtls_from_the_mesh_wide_policy_or_a_port_counts():
    mesh_wide = [namespace(NS), pa("default", "istio-system"), *deployment_with_pods("web")]
    assert brief(found(mesh_wide, check="MESH-MTLS-001")) == [("MESH-MTLS-001", "error", "Deployment my-app/web")]
    port = [namespace(NS), pa("web", mode="PERMISSIVE", selector={"app": "web"}, ports={"8080": {"mode": "STRICT"}}),
            *deployment_with_pods("web")]
    assert "on some ports" in found(port, check="MESH-MTLS-001")[0].message


def test_strict_mtls_not_fired_when_meshed_or_permissive_or_overridden():
    assert found([ENABLED, pa(), *deployment_with_pods("web", sidecar="native")], check="MESH-MTLS-001") == []
    assert found([namespace(NS), pa(mode="PERMISSIVE"), *deployment_with_pods("web")], check="MESH-MTLS-001") == []
    override = pa("web-permissive", mode="PERMISSIVE", selector={"app": "web"})
    assert found([namespace(NS), pa(), override, *deployment_with_pods("web")], check="MESH-MTLS-001") == []


def test_strict_mtls_callers_named_in_pod_spec_are_a_warning():
    caller = deployment_with_pods("report", "batch")
    for item in caller:
        if item["kind"] in ("Pod", "Deployment"):
            spec = item["spec"] if item["kind"] == "Pod" else item["spec"]["template"]["spec"]
            spec["containers"][0]["env"] = [{"name": "API", "value": "http://web.my-app.svc.cluster.local"}]
    objs = [ENABLED, pa(), service("web"), *deployment_with_pods("web", sidecar="container"),
            namespace("batch"), *caller]
    result = found(objs, check="MESH-MTLS-002")
    assert brief(result) == [("MESH-MTLS-002", "warning", "PeerAuthentication my-app/strict-mtls")]
    assert "batch/deployment/report (calls web.my-app)" in result[0].message


def test_strict_mtls_other_unmeshed_workloads_are_possible_callers_info():
    objs = [ENABLED, pa(), service("web"), *deployment_with_pods("web", sidecar="container"),
            namespace("batch"), *deployment_with_pods("report", "batch")]
    assert brief(found(objs, check="MESH-MTLS-002")) == [
        ("MESH-MTLS-002", "info", "PeerAuthentication my-app/strict-mtls")]


def test_strict_mtls_possible_callers_listed_up_to_a_cap_with_their_count():
    objs = [ENABLED, pa(), service("web"), *deployment_with_pods("web", sidecar="container"), namespace("batch")]
    for i in range(25):
        objs += deployment_with_pods(f"job-{i:02d}", "batch")
    (result,) = found(objs, check="MESH-MTLS-002")
    assert result.details["possibleCallerCount"] == 25
    assert len(result.details["possibleCallers"]) == 20
    assert result.message.endswith("batch/deployment/job-04 and 20 more")


def test_strict_mtls_caller_named_by_host_not_by_a_longer_name_containing_it():
    caller = deployment_with_pods("report", "batch")
    for item in caller:
        if item["kind"] in ("Pod", "Deployment"):
            spec = item["spec"] if item["kind"] == "Pod" else item["spec"]["template"]["spec"]
            spec["containers"][0]["args"] = ["--upstream=old-web.my-app:80", "--db", "db.my-app.svc:5432"]
    objs = [ENABLED, pa(), service("web"), service("db"), *deployment_with_pods("web", sidecar="container"),
            namespace("batch"), *caller]
    (result,) = found(objs, check="MESH-MTLS-002")
    assert result.details["callers"] == [{"namespace": "batch", "workload": "deployment/report", "service": "db"}]


def test_strict_mtls_callers_not_fired_without_unmeshed_workloads_or_strict():
    objs = [ENABLED, pa(), *deployment_with_pods("web", sidecar="container"),
            namespace("other", {"istio-injection": "enabled"}), *deployment_with_pods("o", "other", sidecar="container")]
    assert found(objs, check="MESH-MTLS-002") == []
    permissive = [ENABLED, pa(mode="PERMISSIVE"), namespace("batch"), *deployment_with_pods("report", "batch")]
    assert found(permissive, check="MESH-MTLS-002") == []
    # unmeshed workloads themselves under STRICT are MESH-MTLS-001's, not callers here
    both = [ENABLED, pa(), namespace("inv"), pa(ns="inv"), *deployment_with_pods("api", "inv")]
    assert found(both, check="MESH-MTLS-002") == []


def test_several_namespace_wide_peer_authentications():
    objs = [ENABLED, pa("b-strict", created="2024-01-01T00:00:00Z"),
            pa("a-permissive", mode="PERMISSIVE", created="2024-02-01T00:00:00Z"),
            pa("workload", selector={"app": "x"})]
    result = found(objs, check="MESH-MTLS-003")
    assert brief(result) == [("MESH-MTLS-003", "warning", "PeerAuthentication my-app/a-permissive")]
    assert "only the oldest, my-app/b-strict (mode STRICT)" in result[0].message
    assert found([ENABLED, pa(), pa("workload", selector={"app": "x"})], check="MESH-MTLS-003") == []


# -- traffic ----------------------------------------------------------------------------------
def test_route_to_unknown_subset_including_mirrors():
    objs = [*CANARY_OK, vs("bogus", [("my-app", "nope", None)]),
            vs("mirror", [("my-app", "stable", None)], mirror={"host": "my-app", "subset": "gone"})]
    result = found(objs, check="MESH-TRF-001")
    assert brief(result) == [("MESH-TRF-001", "error", "VirtualService my-app/bogus"),
                             ("MESH-TRF-001", "error", "VirtualService my-app/mirror")]
    assert 'routes to subset "nope" of my-app' in result[0].message
    assert "(my-app/my-app defines stable, canary)" in result[0].message
    assert result[1].message.startswith("http[0].mirror routes to subset \"gone\"")


def test_subset_defined_in_a_second_rule_for_the_host_is_known():
    second = dr("my-app-extra", "my-app.my-app.svc.cluster.local", subsets=(("v3", "v3"),),
                created="2024-03-01T00:00:00Z")
    objs = [*CANARY_OK, second, *versioned("v3"), vs("v3", [("my-app", "v3", None)])]
    assert found(objs, check="MESH-TRF-001") == []


def test_route_to_subset_of_a_host_without_destination_rule():
    objs = [ENABLED, service(), *versioned("v1"), vs("only", [("my-app", "stable", None)])]
    result = found(objs, check="MESH-TRF-002")
    assert brief(result) == [("MESH-TRF-002", "error", "VirtualService my-app/only")]
    assert found([ENABLED, service(), *versioned("v1"), vs("plain", [("my-app", None, None)])],
                 check="MESH-TRF-002") == []


def test_subset_selecting_no_pods_is_a_503_error_when_routed():
    objs = [ENABLED, service(), dr(), vs(), *versioned("v1", 3), *versioned("2.0")]
    result = found(objs, check="MESH-TRF-003")
    assert brief(result) == [("MESH-TRF-003", "error", "DestinationRule my-app/my-app")]
    message = result[0].message
    assert 'subset "canary" (version=v2) selects none of the 4 pods behind Service my-app/my-app (app=my-app)' \
        in message
    assert "they carry version=v1 (3), 2.0 (1)" in message
    assert "VirtualService my-app/my-app http[0].route[1] (weight 10)" in message
    assert result[0].istio_code == "IST0173"


def test_subset_selecting_no_pods_unrouted_is_a_warning_and_zero_weight_is_unrouted():
    objs = [ENABLED, service(), dr(), vs(routes=(("my-app", "stable", 100), ("my-app", "canary", 0))),
            *versioned("v1")]
    assert brief(found(objs, check="MESH-TRF-003")) == [("MESH-TRF-003", "warning", "DestinationRule my-app/my-app")]


def test_subset_selection_respects_the_service_selector_and_namespace():
    other_app = versioned("v2", app="other")  # right version, wrong app: not behind the service
    elsewhere = versioned("v2", ns="elsewhere")
    objs = [ENABLED, service(), dr(), *versioned("v1"), *other_app, *elsewhere]
    assert [f.details["subset"] for f in found(objs, check="MESH-TRF-003")] == ["canary"]


def test_topology_subsets_match_pods_through_their_node():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {
        "topology.kubernetes.io/region": "us-west-1", "topology.kubernetes.io/zone": "us-west-1a"}}}
    rule = dr(subsets=(("west", {"topology.kubernetes.io/region": "us-west-1"}),
                       ("zone", {"topology.kubernetes.io/zone": "us-west-1a", "version": "v1"})))
    assert found([ENABLED, node, service(), rule, *versioned("v1")], check="MESH-TRF-003") == []
    east = dr(subsets=(("east", {"topology.kubernetes.io/region": "us-east-1"}),))
    assert len(found([ENABLED, node, service(), east, *versioned("v1")], check="MESH-TRF-003")) == 1


def test_subset_check_skips_hosts_without_a_known_service():
    assert found([ENABLED, dr(host="external.example.com")], check="MESH-TRF-003") == []


def test_route_to_host_with_no_service_or_service_entry():
    objs = [*CANARY_OK, vs("typo", [("my-ap", None, None)])]
    result = found(objs, check="MESH-TRF-004")
    assert brief(result) == [("MESH-TRF-004", "error", "VirtualService my-app/typo")]
    assert "routes to my-ap (my-ap.my-app.svc.cluster.local), but there is no Service my-app/my-ap" \
        in result[0].message


def test_service_entry_hosts_including_wildcards_are_valid_destinations():
    se = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "ext", "namespace": NS},
          "spec": {"hosts": ["api.example.com", "*.googleapis.com"]}}
    objs = [*CANARY_OK, se, vs("ext", [("api.example.com", None, 50), ("storage.googleapis.com", None, 50)])]
    assert found(objs, check="MESH-TRF-004") == []
    assert brief(found([*CANARY_OK, vs("ext", [("api.example.com", None, None)])], check="MESH-TRF-004")) == [
        ("MESH-TRF-004", "error", "VirtualService my-app/ext")]


def test_unknown_host_outside_what_was_read_is_only_info():
    # a namespace-scoped read cannot see other namespaces' Services
    objs = [*CANARY_OK, vs("cross", [("ratings.other.svc.cluster.local", None, None)])]
    result = found(objs, check="MESH-TRF-004", scope=NS)
    assert brief(result) == [("MESH-TRF-004", "info", "VirtualService my-app/cross")]
    assert "run with -A to confirm" in result[0].message


@pytest.mark.parametrize("routes, problem", [
    ((("my-app", "stable", 100), ("my-app", "canary", -10)), "negative weight -10 (http[0].route[1])"),
    ((("my-app", "stable", 0), ("my-app", "canary", 0)), "weights 0, 0 sum to zero"),
])
def test_bad_weights(routes, problem):
    result = found([*CANARY_OK, vs("bad", routes)], check="MESH-TRF-005")
    assert brief(result) == [("MESH-TRF-005", "error", "VirtualService my-app/bad")]
    assert problem in result[0].message


def test_weights_need_not_sum_to_100_and_tcp_routes_count():
    assert found([*CANARY_OK, vs("odd", (("my-app", "stable", 3), ("my-app", "canary", 1)))],
                 check="MESH-TRF-005") == []
    tcp = vs("tcp", (("my-app", "stable", 0), ("my-app", "canary", 0)), kind="tcp")
    assert [f.details["where"] for f in found([*CANARY_OK, tcp], check="MESH-TRF-005")] == ["tcp[0]"]


def test_several_destination_rules_for_one_host_lose_the_later_traffic_policy():
    breaker = {"connectionPool": {"tcp": {"maxConnections": 100}}}
    later = dr("my-app-cb", "my-app", subsets=None, policy=breaker, created="2024-02-01T00:00:00Z")
    first = dr(policy={"loadBalancer": {"simple": "LEAST_REQUEST"}})
    result = found([*CANARY_OK[:2], first, *CANARY_OK[3:], later], check="MESH-TRF-006")
    assert brief(result) == [("MESH-TRF-006", "warning", "DestinationRule my-app/my-app-cb")]
    assert "trafficPolicy (connectionPool) is silently ignored in favour of my-app/my-app's" in result[0].message
    assert "kubectl mesh circuit-breaker my-app -n my-app" in result[0].fix


def test_several_destination_rules_losing_nothing_is_info_and_one_rule_is_fine():
    extra = dr("my-app-v3", "my-app", subsets=(("v3", "v3"),), created="2024-02-01T00:00:00Z")
    assert brief(found([*CANARY_OK, extra, *versioned("v3")], check="MESH-TRF-006")) == [
        ("MESH-TRF-006", "info", "DestinationRule my-app/my-app-v3")]
    assert found(CANARY_OK, check="MESH-TRF-006") == []
    # rules in different namespaces are not merged
    assert found([*CANARY_OK, dr(ns="other", host="my-app.my-app.svc.cluster.local")], check="MESH-TRF-006") == []


# -- resources ---------------------------------------------------------------------------------
def annotated(annotations, ns=NS, name="web"):
    return deployment(name, ns, template_annotations=annotations)


def test_sidecar_resources_too_low_states_the_thresholds():
    objs = [ENABLED, annotated({"sidecar.istio.io/proxyCPU": "10m", "sidecar.istio.io/proxyMemory": "64Mi"})]
    result = found(objs, check="MESH-RES-001")
    assert brief(result) == [("MESH-RES-001", "warning", "Deployment my-app/web")]
    assert "proxyCPU=10m is below 100m; proxyMemory=64Mi is below 128Mi" in result[0].message
    assert "100m CPU and 128Mi memory" in result[0].message
    assert result[0].fix.startswith("kubectl mesh sidecar-resources deployment/web -n my-app")


@pytest.mark.parametrize("annotations, problem", [
    ({"sidecar.istio.io/proxyCPU": "lots"}, 'proxyCPU="lots" is not a Kubernetes quantity'),
    ({"sidecar.istio.io/proxyMemory": "256Mi", "sidecar.istio.io/proxyMemoryLimit": "200Mi"},
     "proxyMemoryLimit=200Mi is below proxyMemory=256Mi"),
    ({"sidecar.istio.io/proxyCPU": "500m", "sidecar.istio.io/proxyCPULimit": "0.2"},
     "proxyCPULimit=0.2 is below proxyCPU=500m"),
])
def test_sidecar_resources_invalid(annotations, problem):
    result = found([ENABLED, annotated(annotations)], check="MESH-RES-002")
    assert brief(result) == [("MESH-RES-002", "error", "Deployment my-app/web")]
    assert problem in result[0].message
    assert result[0].istio_code == "IST0125"


def test_sidecar_resources_ignored_where_no_sidecar_and_fine_values_pass():
    low = {"sidecar.istio.io/proxyCPU": "10m"}
    assert found([namespace(NS), annotated(low)], check="MESH-RES-001") == []  # not meshed
    good = {"sidecar.istio.io/proxyCPU": "100m", "sidecar.istio.io/proxyMemory": "128Mi",
            "sidecar.istio.io/proxyCPULimit": "2", "sidecar.istio.io/proxyMemoryLimit": "1Gi"}
    assert found([ENABLED, annotated(good)], check="MESH-RES-001") == []
    assert found([ENABLED, annotated(good)], check="MESH-RES-002") == []


def test_sidecar_resources_of_meshed_bare_pods():
    objs = [namespace(NS), pod("solo", NS, sidecar="container", annotations={"sidecar.istio.io/proxyMemory": "1Mi"})]
    assert brief(found(objs, check="MESH-RES-001")) == [("MESH-RES-001", "warning", "Pod my-app/solo")]


# -- offline (manifests) ----------------------------------------------------------------------
def test_offline_templates_stand_for_pods():
    objs = [ENABLED, service(), dr(), vs(),
            deployment("v1", NS, labels={"app": "my-app", "version": "v1"}),
            deployment("v2", NS, labels={"app": "my-app", "version": "v2"})]
    assert found(objs, offline=True) == []
    objs[-1] = deployment("v2", NS, labels={"app": "my-app", "version": "2.0"})
    result = found(objs, offline=True)
    assert brief(result) == [("MESH-TRF-003", "error", "DestinationRule my-app/my-app")]
    assert "pod templates of deployment/v1, deployment/v2" in result[0].message


def test_offline_missing_service_outside_the_manifests_is_info():
    result = found([vs("only", [("reviews", None, None)], ns="default")], offline=True)
    assert brief(result) == [("MESH-TRF-004", "info", "VirtualService default/only")]
    assert "not among these manifests" in result[0].message


def test_findings_filtered_by_namespace():
    objs = [namespace("a"), *deployment_with_pods("x", "a"), namespace("b"), *deployment_with_pods("y", "b")]
    snap = Snapshot(copy.deepcopy(objs))
    assert [f.object.name for f in findings.run(snap, namespaces={"b"})] == ["b"]


def test_sidecar_resources_fix_is_a_runnable_command_from_the_values():
    invalid = {"sidecar.istio.io/proxyMemory": "256Mi", "sidecar.istio.io/proxyMemoryLimit": "128Mi",
               "sidecar.istio.io/proxyCPU": "200m"}
    (finding,) = found([ENABLED, annotated(invalid)], check="MESH-RES-002")
    assert finding.fix == ("kubectl mesh sidecar-resources deployment/web -n my-app --cpu 200m --memory 256Mi "
                           "--memory-limit 256Mi")
    low = {"sidecar.istio.io/proxyCPU": "10m", "sidecar.istio.io/proxyMemoryLimit": "2Gi"}
    (finding,) = found([ENABLED, annotated(low)], check="MESH-RES-001")
    assert finding.fix.endswith("--cpu 100m --memory 128Mi --memory-limit 2Gi")
