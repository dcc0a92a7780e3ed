"""Tests of the local test API server (tests/cluster) driven by the real kubectl binary,
plus direct HTTP and Python-level checks where kubectl cannot see the difference."""

from __future__ import annotations

import copy
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.cluster import TestCluster
from tests.cluster.fixtures import cluster_factory, kubeconfig, kubectl, test_cluster
from tests.cluster.patch import json_patch, merge_patch, strategic_merge_patch
from tests.cluster.quantity import canonical

# The server's pytest fixtures, used here by name (kept referenced so tests may take them as arguments).
FIXTURES = (cluster_factory, kubeconfig, kubectl, test_cluster)

REPO = Path(__file__).resolve().parents[1]
INJECTED = REPO / "tests" / "data" / "injected"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs the real kubectl binary")

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-app
  namespace: my-app
spec:
  replicas: 2
  selector:
    matchLabels: {app: my-app}
  template:
    metadata:
      labels: {app: my-app, version: v1}
    spec:
      containers:
      - name: my-app
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 80}
"""

DESTINATION_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: backend-api
  namespace: my-app
spec:
  host: backend-api
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100}
      http: {h2UpgradePolicy: DEFAULT, http1MaxPendingRequests: 50, http2MaxRequests: 100}
    outlierDetection: {consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 60s, maxEjectionPercent: 50}
"""

# The guide's check that every pod carries the proxy (the shell would pass these literally).
GUIDE_JSONPATH = '{range .items[*]}{.metadata.name}{"\\t"}{range .spec.containers[*]}{.name}{" "}{end}{"\\n"}{end}'


@pytest.fixture
def kube(tmp_path):
    """kube(cluster) -> a function running the real kubectl against that cluster."""

    def bind(cluster: TestCluster):
        kc = cluster.write_kubeconfig(tmp_path / f"kubeconfig-{cluster.port}")
        env = dict(os.environ, KUBECONFIG=str(kc), KUBECACHEDIR=str(tmp_path / f"cache-{cluster.port}"),
                   HOME=str(tmp_path / "home"))

        def run(*args: str, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
            return subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=env,
                                  timeout=timeout)

        run.cluster = cluster
        return run

    return bind


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"kubectl failed ({result.returncode}): {result.stderr}"
    return result.stdout


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"kubectl unexpectedly succeeded: {result.stdout}"
    return result.stderr


def call(cluster: TestCluster, method: str, path: str, body=None, content_type="application/json",
         headers=None) -> tuple[int, dict, dict | str]:
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(cluster.url + path, data=data, method=method,
                                 headers={"Content-Type": content_type,
                                          "Authorization": f"Bearer {cluster.token(cluster.user)}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10, context=cluster.ssl_context()) as resp:
            raw, code, hdrs = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw, code, hdrs = e.read(), e.code, e.headers
    try:
        return code, hdrs, json.loads(raw)
    except ValueError:
        return code, hdrs, raw.decode()


# --------------------------------------------------------------------------- the guide's flow


def test_guide_flow_apply_label_restart_and_verify(test_cluster, kubectl, tmp_path):
    deploy, dr = tmp_path / "deploy.yaml", tmp_path / "dr.yaml"
    deploy.write_text(DEPLOYMENT)
    dr.write_text(DESTINATION_RULE)

    assert ok(kubectl("create", "namespace", "my-app")) == "namespace/my-app created\n"
    assert ok(kubectl("apply", "-f", str(deploy), "-f", str(dr))) == (
        "deployment.apps/my-app created\ndestinationrule.networking.istio.io/backend-api created\n")
    assert ok(kubectl("apply", "-f", str(deploy), "-f", str(dr))) == (
        "deployment.apps/my-app unchanged\ndestinationrule.networking.istio.io/backend-api unchanged\n")
    dr.write_text(DESTINATION_RULE.replace("maxConnections: 100", "maxConnections: 200"))
    assert ok(kubectl("apply", "-f", str(dr))) == "destinationrule.networking.istio.io/backend-api configured\n"
    stored = test_cluster.get("destinationrules", "my-app", "backend-api")
    assert stored["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] == 200
    last_applied = json.loads(stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] == 200

    bogus = tmp_path / "bogus.yaml"
    bogus.write_text(DESTINATION_RULE.replace("h2UpgradePolicy: DEFAULT", "h2UpgradePolicy: BOGUS"))
    assert fails(kubectl("apply", "-f", str(bogus))).strip() == (
        'The DestinationRule "backend-api" is invalid: spec.trafficPolicy.connectionPool.http.h2UpgradePolicy: '
        'Unsupported value: "BOGUS": supported values: "DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"')
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(DESTINATION_RULE.replace("  host: backend-api", "  host: backend-api\n  hostt: typo"))
    err = fails(kubectl("apply", "-f", str(unknown)))
    assert err.startswith("Error from server (BadRequest)")
    assert err.rstrip().endswith('DestinationRule in version "v1" cannot be handled as a DestinationRule: '
                                 'strict decoding error: unknown field "spec.hostt"')
    old_pods = {p["metadata"]["name"] for p in test_cluster.list("pods", "my-app")}
    assert len(old_pods) == 2

    assert ok(kubectl("label", "namespace", "my-app", "istio-injection=enabled")) == "namespace/my-app labeled\n"
    assert ok(kubectl("rollout", "restart", "deployment", "-n", "my-app")) == "deployment.apps/my-app restarted\n"
    assert "successfully rolled out" in ok(
        kubectl("rollout", "status", "deployment/my-app", "-n", "my-app", "--timeout=20s"))

    lines = ok(kubectl("get", "pods", "-n", "my-app", "-o", f"jsonpath={GUIDE_JSONPATH}")).splitlines()
    assert len(lines) == 2
    for line in lines:
        name, containers = line.split("\t")
        assert name not in old_pods
        assert containers == "my-app istio-proxy "
    deployment = test_cluster.get("deployments", "my-app", "my-app")
    assert deployment["metadata"]["generation"] == 2 == deployment["status"]["observedGeneration"]
    test_cluster.assert_healthy()


def test_one_list_for_many_kinds_namespaced_and_all_namespaces(test_cluster, kubectl):
    test_cluster.load(DEPLOYMENT + "---" + DESTINATION_RULE)
    kinds = ("namespaces,pods,deployments,statefulsets,daemonsets,replicasets,services,"
             "virtualservices.networking.istio.io,destinationrules.networking.istio.io,"
             "peerauthentications.security.istio.io")
    listed = json.loads(ok(kubectl("get", kinds, "-n", "my-app", "-o", "json")))
    assert listed["kind"] == "List"
    found = {(i["kind"], i["metadata"]["name"]) for i in listed["items"]}
    assert {("Namespace", "my-app"), ("Deployment", "my-app"), ("DestinationRule", "backend-api")} <= found
    assert sum(1 for kind, _ in found if kind == "Pod") == 2
    everywhere = yaml.safe_load(ok(kubectl("get", kinds, "-A", "-o", "yaml")))
    assert ("Deployment", "istiod") in {(i["kind"], i["metadata"]["name"]) for i in everywhere["items"]}

    table = ok(kubectl("get", "pods,destinationrules", "-n", "my-app"))
    assert re.search(r"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", table, re.M)
    assert re.search(r"^pod/my-app-[a-z0-9]+-[a-z0-9]{5}\s+1/1\s+Running\s+0\s+\d+s$", table, re.M)
    assert re.search(r"^destinationrule.networking.istio.io/backend-api\s+backend-api\s+\d+s$", table, re.M)


def test_istio_kinds_are_unknown_when_istio_is_not_installed(cluster_factory, kube):
    kubectl = kube(cluster_factory(istio_installed=False))
    err = fails(kubectl("get", "namespaces,virtualservices.networking.istio.io", "-o", "json"))
    assert err.strip() == 'error: the server doesn\'t have a resource type "virtualservices"'
    assert ok(kubectl("get", "crd", "-o", "name")) == ""
    cluster = kubectl.cluster
    assert cluster.get("namespaces", None, "istio-system") is None and cluster.list("deployments") == []


# --------------------------------------------------------------------------- concurrency and versions


def test_stale_resource_versions_conflict_and_merge_patch_works(test_cluster, kubectl):
    test_cluster.load(DESTINATION_RULE)
    ns_rv = test_cluster.get("namespaces", None, "my-app")["metadata"]["resourceVersion"]
    ok(kubectl("label", "namespace", "my-app", "team=a"))
    assert fails(kubectl("label", "namespace", "my-app", "tier=b", f"--resource-version={ns_rv}")).strip() == (
        'Error from server (Conflict): Operation cannot be fulfilled on namespaces "my-app": the object has been '
        "modified; please apply your changes to the latest version and try again")

    stale = test_cluster.get("destinationrules", "my-app", "backend-api")
    test_cluster.patch("destinationrules", "my-app", "backend-api", {"metadata": {"labels": {"x": "y"}}})
    err = fails(kubectl("replace", "-f", "-", input=json.dumps(stale)))
    assert err.strip() == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on '
        'destinationrules.networking.istio.io "backend-api": the object has been modified; please apply your '
        "changes to the latest version and try again")

    assert ok(kubectl("patch", "destinationrule", "backend-api", "-n", "my-app", "--type", "merge",
                      "-p", '{"spec":{"host":"reviews"}}')) == (
        "destinationrule.networking.istio.io/backend-api patched\n")
    as_beta = json.loads(ok(kubectl("get", "destinationrules.v1beta1.networking.istio.io", "backend-api",
                                    "-n", "my-app", "-o", "json")))
    assert as_beta["apiVersion"] == "networking.istio.io/v1beta1"
    assert as_beta["spec"]["host"] == "reviews"
    assert as_beta["metadata"]["labels"] == {"x": "y"}
    assert "reviews" in ok(kubectl("get", "destinationrules.v1alpha3.networking.istio.io", "-n", "my-app"))


def test_update_is_unconditional_without_resource_version_and_generation_tracks_spec(test_cluster):
    test_cluster.load(DESTINATION_RULE)
    dr = test_cluster.get("destinationrules", "my-app", "backend-api")
    rv = int(dr["metadata"]["resourceVersion"])
    del dr["metadata"]["resourceVersion"]
    dr["metadata"]["labels"] = {"only": "metadata"}
    after = test_cluster.update(dr)
    assert int(after["metadata"]["resourceVersion"]) > rv
    assert after["metadata"]["generation"] == 1  # metadata-only change
    dr["spec"]["host"] = "other"
    assert test_cluster.update(dr)["metadata"]["generation"] == 2
    unchanged = test_cluster.update(dr)
    assert unchanged["metadata"]["generation"] == 2  # a no-op write changes nothing
    code, _, body = call(test_cluster, "PATCH", "/apis/networking.istio.io/v1/namespaces/my-app/destinationrules/"
                         "backend-api", {"metadata": {"resourceVersion": "1"}, "spec": {"host": "x"}},
                         "application/merge-patch+json")
    assert (code, body["reason"]) == (409, "Conflict")


# --------------------------------------------------------------------------- fault switches


def test_fault_forbidden_500_and_forced_conflict_through_kubectl(test_cluster, kubectl):
    test_cluster.load({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}})
    test_cluster.forbid("patch", "namespaces")
    assert fails(kubectl("label", "namespace", "my-app", "a=b")).strip() == (
        'Error from server (Forbidden): namespaces "my-app" is forbidden: User "test" cannot patch resource '
        '"namespaces" in API group "" at the cluster scope')
    assert kubectl("auth", "can-i", "patch", "namespaces").stdout == "no\n"  # access reviews follow the switches
    test_cluster.clear_faults()
    test_cluster.forbid("list", "deployments.apps", namespace="my-app")
    assert fails(kubectl("get", "deployments", "-n", "my-app")).strip() == (
        'Error from server (Forbidden): deployments.apps is forbidden: User "test" cannot list resource '
        '"deployments" in API group "apps" in the namespace "my-app"')
    test_cluster.clear_faults()

    test_cluster.fail(500, verb="get", resource="namespaces", count=1)
    assert fails(kubectl("get", "namespace", "my-app")).strip() == (
        "Error from server (InternalError): Internal error occurred: fault injected by the test API server")
    assert test_cluster.faults.rules == []  # used up: only the next request failed

    test_cluster.conflict_next_write("namespaces")
    assert fails(kubectl("label", "namespace", "my-app", "a=b")).strip() == (
        'Error from server (Conflict): Operation cannot be fulfilled on namespaces "my-app": the object has been '
        "modified; please apply your changes to the latest version and try again")
    assert test_cluster.faults.rules == [] and "a" not in test_cluster.get("namespaces", None, "my-app")["metadata"]["labels"]


def test_fault_dropped_connection_and_latency(test_cluster, kubectl):
    test_cluster.load({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}})
    test_cluster.drop_connections(1, verb="patch", resource="namespaces")
    err = fails(kubectl("label", "namespace", "my-app", "a=b"))
    assert "EOF" in err
    assert "a" not in test_cluster.get("namespaces", None, "my-app")["metadata"]["labels"]
    assert test_cluster.requests.matching(method="PATCH")[-1].status == -1  # closed without an answer

    test_cluster.add_latency(0.5, verb="get", resource="namespaces", count=1)
    started = time.monotonic()
    ok(kubectl("get", "namespace", "my-app"))
    assert time.monotonic() - started >= 0.5


def test_on_next_write_makes_a_genuine_concurrent_change(test_cluster, kubectl):
    test_cluster.load({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}})
    current = test_cluster.get("namespaces", None, "my-app")["metadata"]["resourceVersion"]
    test_cluster.on_next_write("namespaces", lambda c: c.patch("namespaces", None, "my-app",
                                                               {"metadata": {"labels": {"team": "payments"}}}))
    # kubectl read version `current`; the hook writes first, so the conditional patch is stale.
    err = fails(kubectl("label", "namespace", "my-app", "istio-injection=enabled", f"--resource-version={current}"))
    assert "Error from server (Conflict)" in err
    labels = test_cluster.get("namespaces", None, "my-app")["metadata"]["labels"]
    assert labels["team"] == "payments" and "istio-injection" not in labels
    ok(kubectl("label", "namespace", "my-app", "istio-injection=enabled"))  # the hook ran only once


# --------------------------------------------------------------------------- sidecar injection


def test_native_sidecars_revision_label_and_opt_out(cluster_factory, kube, tmp_path):
    cluster = cluster_factory(native_sidecars=True, istio_revisions=("default", "canary"))
    kubectl = kube(cluster)
    cluster.load("""
apiVersion: v1
kind: Namespace
metadata: {name: rev, labels: {istio.io/rev: canary}}
---
apiVersion: v1
kind: Namespace
metadata: {name: missing-rev, labels: {istio.io/rev: pidgeon}}
---
apiVersion: v1
kind: Namespace
metadata: {name: both, labels: {istio-injection: enabled, istio.io/rev: canary}}
""")
    manifest = tmp_path / "pods.yaml"
    pods = []
    for ns in ("rev", "missing-rev", "both"):
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": ns},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    pods.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "opted-out", "namespace": "both", "labels": {"sidecar.istio.io/inject": "false"}},
                 "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    pods.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "host", "namespace": "both"},
                 "spec": {"hostNetwork": True, "containers": [{"name": "app", "image": "nginx:1.27"}]}})
    manifest.write_text(yaml.safe_dump_all(pods))
    ok(kubectl("apply", "-f", str(manifest)))

    rev = cluster.get("pods", "rev", "app")
    assert [c["name"] for c in rev["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]
    assert rev["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    assert [c["name"] for c in rev["spec"]["containers"]] == ["app"]
    assert rev["metadata"]["annotations"]["istio.io/rev"] == "canary"
    assert json.loads(rev["metadata"]["annotations"]["sidecar.istio.io/status"])["revision"] == "canary"
    statuses = {s["name"]: s for s in rev["status"]["initContainerStatuses"]}
    assert statuses["istio-proxy"]["ready"] and statuses["istio-proxy"]["state"].get("running")
    assert "initContainers" not in cluster.get("pods", "missing-rev", "app")["spec"]  # no such control plane
    both = cluster.get("pods", "both", "app")
    assert both["metadata"]["annotations"]["istio.io/rev"] == "default"  # istio-injection wins
    assert "initContainers" not in cluster.get("pods", "both", "opted-out")["spec"]
    assert "initContainers" not in cluster.get("pods", "both", "host")["spec"]
    table = ok(kubectl("get", "pods", "-n", "rev"))
    assert re.search(r"^app\s+2/2\s+Running\s", table, re.M)  # the native sidecar counts


def _uninject(obj: dict) -> dict:
    """The manifest Istio's injector was given, rebuilt from its output."""
    obj = copy.deepcopy(obj)
    pod = obj["spec"]["template"] if obj["kind"] != "Pod" else obj
    meta, spec = pod["metadata"], pod["spec"]
    for key in ("istio.io/rev", "kubectl.kubernetes.io/default-container", "kubectl.kubernetes.io/default-logs-container",
                "prometheus.io/path", "prometheus.io/port", "prometheus.io/scrape", "sidecar.istio.io/status"):
        meta.get("annotations", {}).pop(key, None)
    for key in ("security.istio.io/tlsMode", "service.istio.io/canonical-name", "service.istio.io/canonical-revision"):
        meta.get("labels", {}).pop(key, None)
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "istio-proxy"]
    spec["initContainers"] = [c for c in spec.get("initContainers", []) if c["name"] not in ("istio-init", "istio-proxy")]
    if not spec["initContainers"]:
        del spec["initContainers"]
    istio_volumes = {"workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data",
                     "istio-podinfo", "istio-token", "istiod-ca-cert", "istio-ca-crl"}
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in istio_volumes]
    if not spec["volumes"]:
        del spec["volumes"]
    obj.pop("status", None)
    if obj["kind"] == "StatefulSet":
        obj["spec"].pop("updateStrategy", None)
    if obj["kind"] == "Deployment":
        obj["spec"].pop("strategy", None)
    obj["metadata"]["namespace"] = "default"
    obj["spec"]["replicas"] = 1 if obj["kind"] != "Pod" else None
    if obj["kind"] == "Pod":
        del obj["spec"]["replicas"]
    return obj


_SERVER_DEFAULTS = ("image", "imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy")


def _comparable(container: dict) -> dict:
    c = {k: v for k, v in container.items() if k not in _SERVER_DEFAULTS}
    c["ports"] = [{k: v for k, v in p.items() if (k, v) != ("protocol", "TCP")} for p in c.get("ports", [])]
    # The API server defaults ports' protocol before the webhook sees the pod; Istio's test
    # output had no API server in between.
    c["env"] = [dict(e, value=e["value"].replace(',"protocol":"TCP"', "")) if e["name"] == "ISTIO_META_POD_PORTS"
                else e for e in c.get("env", [])]
    return c


@pytest.mark.parametrize("reference, native", [
    ("hello.yaml.injected", True),
    ("hello-old-version.yaml.injected", False),
    ("resource_annotations.yaml.injected", True),
    ("statefulset-old-version.yaml.injected", False),
    ("native-sidecar-opt-out.yaml.injected", True),
])
def test_injection_matches_istio_reference_output(cluster_factory, reference, native):
    expected = next(d for d in yaml.safe_load_all((INJECTED / reference).read_text()) if d)
    cluster = cluster_factory(native_sidecars=native)
    cluster.patch("namespaces", None, "default", {"metadata": {"labels": {"istio-injection": "enabled"}}})
    cluster.load(_uninject(expected))
    pod = (cluster.list("pods", "default", label_selector="app=hello") or cluster.list("pods", "default"))
    pod = [p for p in pod if p["metadata"]["name"] != "kubernetes"][0]
    want = expected if expected["kind"] == "Pod" else expected["spec"]["template"]

    for section in ("containers", "initContainers"):
        got_names = [c["name"] for c in pod["spec"].get(section, [])]
        want_names = [c["name"] for c in want["spec"].get(section, [])]
        assert got_names == want_names, section
        for got, exp in zip(pod["spec"].get(section, []), want["spec"].get(section, []), strict=True):
            assert got["image"] == ("docker.io/istio/proxyv2:1.32.0" if got["name"].startswith("istio-")
                                    else exp["image"])
            assert _comparable(got) == _comparable(exp), got["name"]
    assert pod["spec"]["volumes"] == want["spec"]["volumes"]
    for key, value in want["metadata"]["annotations"].items():
        assert pod["metadata"]["annotations"][key] == value, key
    for key, value in want["metadata"]["labels"].items():
        assert pod["metadata"]["labels"][key] == value, key


def test_resource_annotations_override_proxy_defaults(test_cluster):
    test_cluster.load("""
apiVersion: v1
kind: Namespace
metadata: {name: my-app, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata:
  name: tuned
  namespace: my-app
  annotations: {sidecar.istio.io/proxyCPU: 250m, sidecar.istio.io/proxyMemoryLimit: 2048Mi}
spec:
  containers: [{name: app, image: nginx:1.27}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: my-app}
spec:
  containers: [{name: app, image: nginx:1.27}]
""")
    proxy = {c["name"]: c for c in test_cluster.get("pods", "my-app", "tuned")["spec"]["containers"]}["istio-proxy"]
    assert proxy["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "2Gi"}}
    plain = {c["name"]: c for c in test_cluster.get("pods", "my-app", "plain")["spec"]["containers"]}["istio-proxy"]
    assert plain["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert [canonical(q) for q in ("1000m", "0.5", "1536Mi", "2000")] == ["1", "500m", "1536Mi", "2k"]


# --------------------------------------------------------------------------- readiness and workloads


@pytest.mark.parametrize("options", [{"ready_after": 3.0}])
def test_rollout_status_waits_for_ready_pods_and_proxy_switch(cluster_factory, kube, tmp_path, options):
    cluster = cluster_factory(**options)
    kubectl = kube(cluster)
    cluster.load("""
apiVersion: v1
kind: Namespace
metadata: {name: my-app, labels: {istio-injection: enabled}}
""")
    (tmp_path / "d.yaml").write_text(DEPLOYMENT)
    ok(kubectl("apply", "-f", str(tmp_path / "d.yaml")))
    err = fails(kubectl("rollout", "status", "deployment/my-app", "-n", "my-app", "--timeout=0.2s"))
    assert "timed out waiting for the condition" in err
    assert "successfully rolled out" in ok(kubectl("rollout", "status", "deployment/my-app", "-n", "my-app",
                                                   "--timeout=15s"))
    cluster.set_proxy_ready(False)
    assert re.search(r"^my-app-\S+\s+1/2\s+Running", ok(kubectl("get", "pods", "-n", "my-app")), re.M)
    assert fails(kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=my-app", "-n", "my-app", "--timeout=0.3s"))
    cluster.set_proxy_ready(True)
    ok(kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=my-app", "-n", "my-app", "--timeout=5s"))


def test_statefulset_daemonset_and_garbage_collection(cluster_factory, kube, tmp_path):
    cluster = cluster_factory(nodes=2)
    kubectl = kube(cluster)
    cluster.load({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}})
    (tmp_path / "w.yaml").write_text("""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: my-app}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres:16}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: my-app}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox:1.36}]}
""")
    ok(kubectl("apply", "-f", str(tmp_path / "w.yaml")))
    assert "partitioned roll out complete: 2 new pods" in ok(
        kubectl("rollout", "status", "statefulset/db", "-n", "my-app", "--timeout=10s"))
    assert 'daemon set "agent" successfully rolled out' in ok(
        kubectl("rollout", "status", "daemonset/agent", "-n", "my-app", "--timeout=10s"))
    agents = cluster.list("pods", "my-app", label_selector="app=agent")
    assert sorted(p["spec"]["nodeName"] for p in agents) == ["node-1", "node-2"]
    before = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"]
              for p in cluster.list("pods", "my-app", label_selector="app=db")}
    assert sorted(before) == ["db-0", "db-1"]
    ok(kubectl("rollout", "restart", "statefulset/db", "-n", "my-app"))
    after = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"]
             for p in cluster.list("pods", "my-app", label_selector="app=db")}
    assert sorted(after) == ["db-0", "db-1"] and set(after.values()).isdisjoint(before.values())

    ok(kubectl("delete", "namespace", "my-app"))
    assert cluster.list("pods", "my-app") == [] and cluster.list("statefulsets", "my-app") == []


def test_deployment_controller_scale_rollback_and_cascading_delete(test_cluster, kubectl):
    test_cluster.load(DEPLOYMENT)
    rs1 = test_cluster.list("replicasets", "my-app")
    assert len(rs1) == 1 and rs1[0]["spec"]["replicas"] == 2
    pods = test_cluster.list("pods", "my-app")
    assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods} == {rs1[0]["metadata"]["name"]}
    assert {p["spec"]["nodeName"] for p in pods} == {"node-1"}
    assert all(p["metadata"]["labels"]["pod-template-hash"] in rs1[0]["metadata"]["name"] for p in pods)

    ok(kubectl("scale", "deployment/my-app", "-n", "my-app", "--replicas=3"))
    assert len(test_cluster.list("pods", "my-app")) == 3
    test_cluster.patch("deployments", "my-app", "my-app",
                       {"spec": {"template": {"spec": {"containers": [{"name": "my-app", "image": "nginx:1.28"}]}}}},
                       patch_type="strategic")
    rss = {rs["metadata"]["name"]: rs for rs in test_cluster.list("replicasets", "my-app")}
    assert len(rss) == 2 and rss[rs1[0]["metadata"]["name"]]["spec"]["replicas"] == 0
    images = {c["image"] for p in test_cluster.list("pods", "my-app") for c in p["spec"]["containers"]}
    assert images == {"nginx:1.28"}
    ok(kubectl("rollout", "undo", "deployment/my-app", "-n", "my-app"))
    images = {c["image"] for p in test_cluster.list("pods", "my-app") for c in p["spec"]["containers"]}
    assert images == {"nginx:1.27"}
    assert test_cluster.get("deployments", "my-app", "my-app")["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "3"

    victim = test_cluster.list("pods", "my-app")[0]["metadata"]["name"]
    ok(kubectl("delete", "pod", victim, "-n", "my-app"))
    names = {p["metadata"]["name"] for p in test_cluster.list("pods", "my-app")}
    assert victim not in names and len(names) == 3  # the ReplicaSet replaced it

    ok(kubectl("delete", "deployment", "my-app", "-n", "my-app", "--cascade=orphan"))
    orphans = test_cluster.list("replicasets", "my-app")
    assert len(orphans) == 2 and not any("ownerReferences" in rs["metadata"] for rs in orphans)
    test_cluster.load(DEPLOYMENT)  # a new Deployment adopts the orphans its selector matches
    uid = test_cluster.get("deployments", "my-app", "my-app")["metadata"]["uid"]
    adopted = test_cluster.list("replicasets", "my-app")
    assert len(adopted) == 2 and {rs["metadata"]["ownerReferences"][0]["uid"] for rs in adopted} == {uid}
    assert len(test_cluster.list("pods", "my-app")) == 2
    test_cluster.delete("deployments", "my-app", "my-app")
    assert test_cluster.list("replicasets", "my-app") == [] and test_cluster.list("pods", "my-app") == []
    test_cluster.assert_healthy()


def test_typed_clients_send_protobuf_and_dry_run_persists_nothing(test_cluster, kubectl, tmp_path):
    ok(kubectl("create", "namespace", "my-app"))
    ok(kubectl("create", "configmap", "settings", "-n", "my-app", "--from-literal=mode=strict"))
    ok(kubectl("create", "deployment", "web", "-n", "my-app", "--image=nginx:1.27", "--replicas=2", "--port=80"))
    assert test_cluster.requests.matching(method="POST", resource="configmaps")[0].content_type == (
        "application/vnd.kubernetes.protobuf")
    assert test_cluster.get("configmaps", "my-app", "settings")["data"] == {"mode": "strict"}
    web = test_cluster.get("deployments", "my-app", "web")
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert len(test_cluster.list("pods", "my-app", label_selector="app=web")) == 2

    (tmp_path / "dr.yaml").write_text(DESTINATION_RULE)
    assert "(server dry run)" in ok(kubectl("apply", "--dry-run=server", "-f", str(tmp_path / "dr.yaml")))
    assert test_cluster.get("destinationrules", "my-app", "backend-api") is None


def test_gateway_api_switch(cluster_factory, kube, tmp_path):
    cluster = cluster_factory(gateway_api=True, istio_installed=False)
    kubectl = kube(cluster)
    (tmp_path / "route.yaml").write_text("""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.com]
""")
    ok(kubectl("apply", "-f", str(tmp_path / "route.yaml")))
    assert re.search(r'^web\s+\["web.example.com"\]\s+\d+s$', ok(kubectl("get", "httproutes")), re.M)
    crds = [c["metadata"]["name"] for c in cluster.list("customresourcedefinitions")]
    assert crds == ["gatewayclasses.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
                    "httproutes.gateway.networking.k8s.io"]


# --------------------------------------------------------------------------- HTTP level


def test_watch_stream_with_field_selector(test_cluster):
    test_cluster.load({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched", "namespace": "default"}})
    rv = test_cluster.get("configmaps", "default", "watched")["metadata"]["resourceVersion"]
    conn = http.client.HTTPSConnection("127.0.0.1", test_cluster.port, timeout=5, context=test_cluster.ssl_context())
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dwatched"
                        f"&resourceVersion={rv}&timeoutSeconds=5", headers={"Authorization": "Bearer test-token"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    test_cluster.load({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "default"}})
    test_cluster.patch("configmaps", "default", "watched", {"data": {"a": "b"}})
    test_cluster.delete("configmaps", "default", "watched")
    events = [json.loads(resp.readline()) for _ in range(2)]
    conn.close()
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"a": "b"} and events[0]["object"]["kind"] == "ConfigMap"
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(events[0]["object"]["metadata"]["resourceVersion"])


def test_field_validation_modes_and_selectors_over_http(test_cluster):
    path = "/apis/networking.istio.io/v1/namespaces/default/virtualservices"
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "r"},
          "spec": {"hosts": ["r"], "extra": 1, "http": [{"route": [{"destination": {"host": "r", "sbset": "v1"}}]}]}}
    code, _, body = call(test_cluster, "POST", path + "?fieldValidation=Strict", vs)
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"].endswith('strict decoding error: unknown field "spec.extra", unknown field '
                                    '"spec.http[0].route[0].destination.sbset"')
    code, headers, body = call(test_cluster, "POST", path + "?fieldValidation=Warn", vs)
    assert code == 201 and "extra" not in body["spec"]
    assert headers.get_all("Warning") == ['299 - "unknown field \\"spec.extra\\""',
                                          '299 - "unknown field \\"spec.http[0].route[0].destination.sbset\\""']
    vs["metadata"]["name"] = "ignored"
    code, headers, body = call(test_cluster, "POST", path + "?fieldValidation=Ignore", vs)
    assert code == 201 and not headers.get_all("Warning") and "extra" not in body["spec"]
    deployment = yaml.safe_load(DEPLOYMENT.replace("replicas: 2", "replica: 2"))
    deployment["metadata"]["namespace"] = "default"
    code, _, body = call(test_cluster, "POST", "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict",
                         deployment)
    assert (code, body["message"]) == (400, 'Deployment in version "v1" cannot be handled as a Deployment: '
                                       'strict decoding error: unknown field "spec.replica"')
    bad = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "bad"},
           "spec": {"hosts": "not-a-list"}}
    code, _, body = call(test_cluster, "POST", path, bad)
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"] == [{"reason": "FieldValueTypeInvalid", "field": "spec.hosts", "message":
                                          'Invalid value: "string": spec.hosts in body must be of type array: "string"'}]

    # x-kubernetes-validations (CEL) the Istio schemas carry, e.g. Go durations.
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "cb"},
          "spec": {"host": "cb", "trafficPolicy": {"outlierDetection": {"interval": "30", "baseEjectionTime": "1m"}}}}
    code, _, body = call(test_cluster, "POST", "/apis/networking.istio.io/v1/namespaces/default/destinationrules", dr)
    assert (code, body["message"]) == (422, 'DestinationRule.networking.istio.io "cb" is invalid: '
                                       'spec.trafficPolicy.outlierDetection.interval: Invalid value: "string": '
                                       "must be a valid duration greater than 1ms")

    for name, labels in (("a", {"app": "web", "tier": "front"}), ("b", {"app": "api"}), ("c", {"tier": "back"})):
        test_cluster.load({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "sel",
                                                                                "labels": labels}})

    def names(selector: str) -> list[str]:
        return [c["metadata"]["name"] for c in test_cluster.list("configmaps", "sel", label_selector=selector)]

    assert names("app=web") == names("app==web") == ["a"]
    assert names("app!=web") == ["b", "c"]
    assert names("app in (web,api)") == ["a", "b"]
    assert names("app notin (web)") == ["b", "c"]
    assert names("tier") == ["a", "c"] and names("!tier") == ["b"]
    assert names("app,tier=front") == ["a"]
    code, _, listed = call(test_cluster, "GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dsel,"
                                                "metadata.name!%3Da")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b", "c"]


def test_errors_are_status_objects_even_for_server_bugs(test_cluster, monkeypatch):
    code, _, body = call(test_cluster, "GET", "/apis/nope.example.com/v1/things")
    assert (code, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    code, _, body = call(test_cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "default"}})
    assert (code, body["reason"], body["message"]) == (409, "AlreadyExists", 'namespaces "default" already exists')
    code, _, body = call(test_cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "My_App"}})
    assert (code, body["reason"], body["details"]["causes"][0]["field"]) == (422, "Invalid", "metadata.name")
    assert body["message"].startswith('Namespace "My_App" is invalid: metadata.name: Invalid value: "My_App": '
                                      "a lowercase RFC 1123 label must consist of")
    code, _, body = call(test_cluster, "POST", "/api/v1/namespaces/default/configmaps",
                         {"metadata": {"generateName": "cfg-"}})
    assert code == 201 and re.fullmatch(r"cfg-[a-z0-9]{5}", body["metadata"]["name"])
    code, _, body = call(test_cluster, "GET", "/api/v1/namespaces/default/pods/missing")
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "missing" not found', "reason": "NotFound",
                    "details": {"name": "missing", "kind": "pods"}, "code": 404}

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(test_cluster.core, "get", boom)
    code, headers, body = call(test_cluster, "GET", "/api/v1/namespaces/default")
    assert (code, body["reason"], headers["Content-Type"]) == (500, "InternalError", "application/json")
    assert "kaboom" in body["message"]
    assert test_cluster.handler_errors and "RuntimeError" in test_cluster.handler_errors[0]


def test_discovery_and_openapi_documents(test_cluster):
    code, headers, agg = call(test_cluster, "GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: [v["version"] for v in g["versions"]] for g in agg["items"]}
    assert groups["networking.istio.io"] == ["v1", "v1beta1", "v1alpha3"]
    assert groups["security.istio.io"] == ["v1", "v1beta1"]
    code, _, legacy = call(test_cluster, "GET", "/apis")
    assert legacy["kind"] == "APIGroupList"
    code, _, resources = call(test_cluster, "GET", "/apis/networking.istio.io/v1beta1")
    assert {"destinationrules", "virtualservices", "gateways", "serviceentries", "sidecars"} <= {
        r["name"] for r in resources["resources"]}
    code, _, index = call(test_cluster, "GET", "/openapi/v3")
    url = index["paths"]["apis/networking.istio.io/v1beta1"]["serverRelativeURL"]
    code, _, doc = call(test_cluster, "GET", url)
    schema = doc["components"]["schemas"]["io.istio.networking.v1beta1.DestinationRule"]
    assert "trafficPolicy" in schema["properties"]["spec"]["properties"]
    patch_ops = [p["patch"] for p in doc["paths"].values() if "patch" in p]
    assert all(any(q["name"] == "fieldValidation" for q in op["parameters"]) for op in patch_ops)


def test_start_is_cheap_and_request_log_records_bodies(test_cluster):
    started = time.perf_counter()
    for _ in range(5):
        TestCluster().start().stop()
    assert (time.perf_counter() - started) / 5 < 0.1
    test_cluster.requests.clear()
    call(test_cluster, "PATCH", "/api/v1/namespaces/default", {"metadata": {"labels": {"a": "b"}}},
         "application/merge-patch+json")
    [record] = test_cluster.requests
    assert (record.method, record.path, record.verb, record.resource, record.name) == (
        "PATCH", "/api/v1/namespaces/default", "patch", "namespaces", "default")
    assert record.content_type == "application/merge-patch+json" and record.json() == {"metadata": {"labels": {"a": "b"}}}
    assert test_cluster.requests.writes() == [record]


# --------------------------------------------------------------------------- patches (pure)


def test_strategic_merge_patch_directives():
    live = {"spec": {"template": {"spec": {
        "containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
             "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "side", "image": "s:1"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}],
        "tolerations": [{"key": "a"}],
    }}}, "metadata": {"finalizers": ["a"], "labels": {"keep": "1", "drop": "2"}}}
    patch = {
        "metadata": {"labels": {"drop": None, "new": "3"}, "finalizers": ["b"]},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
            "containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "Y", "$patch": "delete"}, {"name": "Z", "value": "3"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            ],
            "volumes": [{"name": "v2", "$patch": "delete"}],
            "tolerations": [{"key": "b"}],
        }}},
    }
    out = strategic_merge_patch(live, patch, "Deployment")
    spec = out["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["side", "app"]
    app = spec["containers"][1]
    assert app["image"] == "a:2"
    assert app["env"] == [{"name": "X", "value": "1"}, {"name": "Z", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert spec["volumes"] == [{"name": "v1", "emptyDir": {}}]
    assert spec["tolerations"] == [{"key": "b"}]  # no merge key: replaced
    assert out["metadata"] == {"finalizers": ["a", "b"], "labels": {"keep": "1", "new": "3"}}
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "a:1"  # input untouched

    replaced = strategic_merge_patch(live, {"spec": {"template": {"spec": {
        "containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}}}, "Deployment")
    assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "o:1"}]
    retained = strategic_merge_patch({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
                                     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, "Deployment")
    assert retained["spec"]["strategy"] == {"type": "Recreate"}
    pruned = strategic_merge_patch({"metadata": {"finalizers": ["a", "b"]}},
                                   {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "Pod")
    assert pruned["metadata"]["finalizers"] == ["b"]
    svc = strategic_merge_patch({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}},
                                {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, "Service")
    assert svc["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}


def test_merge_and_json_patch():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {
        "a": {"c": 2, "d": 3}, "l": [2]}
    doc = {"spec": {"hosts": ["a"], "x": 1}}
    out = json_patch(doc, [{"op": "add", "path": "/spec/hosts/-", "value": "b"},
                           {"op": "replace", "path": "/spec/x", "value": 2},
                           {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
                           {"op": "move", "from": "/spec/y", "path": "/spec/z"},
                           {"op": "test", "path": "/spec/z", "value": 2},
                           {"op": "remove", "path": "/spec/hosts/0"}])
    assert out == {"spec": {"hosts": ["b"], "x": 2, "z": 2}} and doc == {"spec": {"hosts": ["a"], "x": 1}}


# --------------------------------------------------------------------------- by hand


def test_python_m_tests_cluster_serves_until_interrupted(tmp_path):
    kc = tmp_path / "kc"
    manifest = tmp_path / "app.yaml"
    manifest.write_text(DEPLOYMENT)
    proc = subprocess.Popen([sys.executable, "-m", "tests.cluster", "--kubeconfig", str(kc), "--load", str(manifest),
                             "--native-sidecars"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", url)
        env = dict(os.environ, KUBECONFIG=str(kc), KUBECACHEDIR=str(tmp_path / "cache"), HOME=str(tmp_path))
        out = subprocess.run(["kubectl", "get", "deployments", "-n", "my-app", "-o", "name"], capture_output=True,
                             text=True, env=env, timeout=30)
        assert out.stdout == "deployment.apps/my-app\n", out.stderr
        assert yaml.safe_load(kc.read_text())["current-context"] == "test"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    assert "Traceback" not in proc.stderr.read()


def test_istiod_carries_its_version_as_istios_charts_label_it(test_cluster, kubectl):
    from tests.cluster.injection import ISTIO_VERSION

    istiod = json.loads(ok(kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")))
    assert istiod["metadata"]["labels"]["app.kubernetes.io/version"] == ISTIO_VERSION
    assert istiod["spec"]["template"]["spec"]["containers"][0]["image"] == f"docker.io/istio/pilot:{ISTIO_VERSION}"
    pods = json.loads(ok(kubectl("get", "pods", "-n", "istio-system", "-l", "app=istiod", "-o", "json")))["items"]
    assert [p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods] == [ISTIO_VERSION]
