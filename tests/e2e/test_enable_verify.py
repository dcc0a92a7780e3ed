"""enable, verify, disable, describe, routes, advise and completion through the real kubectl
against the local test API server."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.e2e.manifests import documents, namespace, workload

APP = documents(
    namespace("my-app", injection=None),
    workload("web", "my-app", replicas=2, pod_labels={"app": "web", "version": "v1"}, image="nginx:1.27"),
    workload("api", "my-app", replicas=2, pod_labels={"app": "api", "version": "v1"}),
)
GUIDE_JSONPATH = ('jsonpath={range .items[*]}{.metadata.name}{"\\t"}{range .spec.containers[*]}{.name}{" "}{end}'
                  '{"\\n"}{end}')


def _containers_by_pod(kubectl, ns="my-app"):
    out = kubectl("get", "pods", "-n", ns, "-o", GUIDE_JSONPATH).stdout
    return {line.split("\t")[0]: line.split("\t")[1].split() for line in out.strip().splitlines()}


def test_enable_injects_every_pod_then_second_run_changes_nothing(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    before = _containers_by_pod(kubectl)
    assert len(before) == 4 and all("istio-proxy" not in c for c in before.values())

    result = mesh("enable", "my-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ label namespace/my-app: enable injection [applied]" in result.stdout
    assert "waiting for 2 rollouts in my-app" in result.stderr and "deployment/web rolled out" in result.stderr

    after = _containers_by_pod(kubectl)
    assert len(after) == 4
    assert set(after).isdisjoint(before)  # every pod was replaced
    assert all(containers[-1] == "istio-proxy" for containers in after.values())

    writes_before = len(e2e.cluster.requests.writes())
    again = mesh("enable", "my-app", "-o", "json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert [s["status"] for s in doc["plan"]] == ["unchanged"]
    assert len(e2e.cluster.requests.writes()) == writes_before  # nothing written
    assert _containers_by_pod(kubectl) == after

    verify = mesh("verify", "my-app")
    assert verify.returncode == 0, verify.stdout
    assert "✓ deployment/web: 2/2 pods have istio-proxy (container)" in verify.stdout
    # istioctl ran once per workload, not once per pod
    describes = [c for c in e2e.istioctl_calls() if c[:3] == ["x", "describe", "pod"]]
    assert len(describes) >= 2 and len({c[3].rsplit("-", 2)[0] for c in describes[-2:]}) == 2


def test_enable_reads_cluster_in_one_batched_call(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    e2e.cluster.requests.clear()
    assert mesh("enable", "my-app", "--dry-run").returncode == 0
    lists = [r for r in e2e.cluster.requests if r.method == "GET" and not r.path.startswith(("/api?", "/apis?"))
             and r.path not in ("/api", "/apis") and "openapi" not in r.path and not r.path.startswith("/version")]
    # kubectl turns one `get KIND,KIND,...` into one list per kind; nothing per pod
    assert not [r for r in lists if "/pods/" in r.path]
    assert not e2e.cluster.requests.writes()


@pytest.mark.cluster(native_sidecars=True)
def test_native_sidecars_are_recognised(e2e, mesh):
    e2e.cluster.load(APP)
    assert mesh("enable", "my-app", "--no-istioctl").returncode == 0
    verify = mesh("verify", "my-app", "--no-istioctl", "-o", "json")
    assert verify.returncode == 0
    workloads = json.loads(verify.stdout)["namespaces"][0]["workloads"]
    assert {w["name"]: w["layout"] for w in workloads} == {"web": ["native"], "api": ["native"]}


def test_opted_out_workload_is_left_alone(e2e, kubectl, mesh):
    e2e.cluster.load(documents(APP, workload("legacy", "my-app",
                                             pod_labels={"app": "legacy", "sidecar.istio.io/inject": "false"})))
    legacy_before = {p for p in _containers_by_pod(kubectl) if p.startswith("legacy")}
    result = mesh("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.returncode == 0, result.stdout
    doc = json.loads(result.stdout)
    assert sorted(s["target"] for s in doc["plan"] if s["action"] == "restart") == ["deployment/api", "deployment/web"]
    legacy_after = {p: c for p, c in _containers_by_pod(kubectl).items() if p.startswith("legacy")}
    assert set(legacy_after) == legacy_before and all("istio-proxy" not in c for c in legacy_after.values())
    check = next(c for c in doc["checks"] if c["subject"] == "deployment/legacy")
    assert check["result"] == "warn"


def test_conflicting_revision_label_is_resolved(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    kubectl("label", "namespace", "my-app", "istio.io/rev=canary")
    result = mesh("enable", "my-app", "--no-istioctl")
    assert result.returncode == 0, result.stdout
    labels = json.loads(kubectl("get", "namespace", "my-app", "-o", "json").stdout)["metadata"]["labels"]
    assert labels.get("istio-injection") == "enabled"
    assert "istio.io/rev" not in labels


def test_verify_on_unlabelled_namespace_exits_1(e2e, mesh):
    e2e.cluster.load(APP)
    result = mesh("verify", "my-app", "--no-istioctl")
    assert result.returncode == 1
    assert "✗ namespace my-app is not labelled for injection" in result.stdout
    assert "    kubectl mesh enable my-app" in result.stdout


@pytest.mark.cluster(users=["dev"])
def test_developer_who_cannot_label_is_told_the_admins_command(e2e, kubectl, mesh):
    """A developer with `edit` in the namespace may restart its workloads but not label it."""
    e2e.cluster.load(APP)
    e2e.cluster.load({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": {"name": "dev-edit", "namespace": "my-app"},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                      "subjects": [{"kind": "User", "name": "dev"}]})
    writes = len(e2e.cluster.requests.writes())
    result = mesh("enable", "my-app", "--context", "dev")
    assert result.returncode == 4
    assert result.stderr.strip().splitlines()[-1] == (
        "error: missing permission for this change: patch namespaces/my-app; nothing was changed")
    assert ("a namespace admin can change the label for you: kubectl label namespace my-app "
            "istio-injection=enabled --overwrite") in result.stdout
    assert len(e2e.cluster.requests.writes()) == writes  # nothing written, not even the restarts
    # Once someone who may has set the label, the developer restarts and verifies their own workloads.
    kubectl("label", "namespace", "my-app", "istio-injection=enabled")
    again = mesh("enable", "my-app", "--context", "dev", "--no-istioctl")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "= label namespace/my-app" in again.stdout and "restart" in again.stdout


def test_conflict_during_label_is_retried(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    e2e.cluster.on_next_write("namespaces", lambda c: c.patch("namespaces", None, "my-app",
                                                              {"metadata": {"labels": {"team": "payments"}}}))
    result = mesh("enable", "my-app", "--no-istioctl")
    assert result.returncode == 0, result.stdout + result.stderr
    labels = json.loads(kubectl("get", "namespace", "my-app", "-o", "json").stdout)["metadata"]["labels"]
    assert labels["istio-injection"] == "enabled"
    assert labels["team"] == "payments"  # the concurrent change survived
    patches = [r for r in e2e.cluster.requests if r.method == "PATCH" and r.path == "/api/v1/namespaces/my-app"]
    assert len(patches) == 2


@pytest.mark.cluster(ready_after=3.0)
def test_interrupt_during_enable_then_rerun_completes(e2e, kubectl, mesh, mesh_popen):
    e2e.cluster.load(APP)
    process = mesh_popen("enable", "my-app", "--no-istioctl")
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline and "waiting for" not in seen:
        seen += process.stderr.readline()
    assert "waiting for" in seen
    import os

    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "run the same command again" in err

    result = mesh("enable", "my-app", "--no-istioctl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(c[-1] == "istio-proxy" for c in _containers_by_pod(kubectl).values())


@pytest.mark.cluster(ready_after=30.0)
def test_rollout_wait_is_bounded_by_timeout(e2e, mesh):
    e2e.cluster.load(APP)
    started = time.monotonic()
    result = mesh("enable", "my-app", "--timeout", "3s", "--no-istioctl")
    assert result.returncode == 4
    assert time.monotonic() - started < 20
    assert "rollout not finished within --timeout 3s" in result.stderr


def test_disable_refuses_under_strict_then_removes_sidecars(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    assert mesh("enable", "my-app", "--no-istioctl").returncode == 0
    kubectl("apply", "-f", "-", input="""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-mtls, namespace: my-app}
spec: {mtls: {mode: STRICT}}
""")
    refused = mesh("disable", "my-app")
    assert refused.returncode == 3
    assert "STRICT mTLS applies to my-app" in refused.stdout
    kubectl("delete", "peerauthentication", "strict-mtls", "-n", "my-app")
    result = mesh("disable", "my-app")
    assert result.returncode == 0, result.stdout
    assert all("istio-proxy" not in c for c in _containers_by_pod(kubectl).values())


@pytest.mark.no_istioctl
def test_verify_without_istioctl_warns(e2e, mesh):
    e2e.cluster.load(APP)
    assert mesh("enable", "my-app").returncode == 0
    result = mesh("verify", "my-app")
    assert result.returncode == 0
    assert "! istioctl not found: skipped describe and routes checks" in result.stdout


def test_describe_and_routes_through_kubectl(e2e, mesh):
    e2e.cluster.load(APP)
    describe = mesh("describe", "web-abc", "-n", "my-app", "-o", "json")
    assert describe.returncode == 0, describe.stderr
    assert json.loads(describe.stdout)["describe"]["pod"]["name"] == "web-abc"
    routes = mesh("routes", "web-abc", "-n", "my-app", "-o", "json")
    assert json.loads(routes.stdout)["routes"][0]["virtualService"] == "httpbin.default"
    assert e2e.istioctl_calls()[-1][:2] == ["proxy-config", "routes"]


@pytest.mark.cluster(gateway_api=True)
def test_advise_sees_the_cluster(e2e, mesh):
    e2e.cluster.load(APP)
    result = mesh("advise", "my-app", "--need", "canary", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["cluster"]["istioInstalled"] is True
    assert doc["cluster"]["gatewayApiInstalled"] is True
    assert doc["cluster"]["sidecarCost"]["pods"] == 4


@pytest.mark.cluster(istio_installed=False)
def test_advise_and_enable_without_istio(e2e, mesh):
    e2e.cluster.load(APP)
    advise = json.loads(mesh("advise", "--need", "mtls", "-o", "json").stdout)
    assert advise["cluster"]["istioInstalled"] is False
    enable = mesh("enable", "my-app")
    assert enable.returncode == 3
    assert "Istio is not installed" in enable.stdout
    # the same refusal, exit 3, for every command that needs Istio
    for argv in (("mtls", "my-app", "permissive"), ("canary", "status", "my-app", "-n", "my-app"),
                 ("circuit-breaker", "web", "-n", "my-app"), ("sidecar-resources", "deploy/web", "-n", "my-app",
                                                              "--cpu", "100m", "--memory", "128Mi")):
        result = mesh(*argv)
        assert result.returncode == 3, (argv, result.stderr)
        assert "Istio is not installed on this cluster" in result.stdout + result.stderr, argv


def test_completion_through_kubectl_offers_cluster_namespaces(e2e, kubectl):
    e2e.cluster.load(APP)
    out = kubectl("__complete", "mesh", "verify", "my").stdout
    assert out.splitlines()[0] == "my-app"
    assert ":4" in out


def test_unreachable_kubeconfig_exits_4_in_one_line(e2e, mesh):
    result = mesh("verify", "-n", "x", "--kubeconfig", "/nonexistent")
    assert result.returncode == 4
    assert result.stderr.strip() == ("error: stat /nonexistent: no such file or directory "
                                     "(from: kubectl --kubeconfig /nonexistent get pods,services,"
                                     "deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps,"
                                     "virtualservices.networking.istio.io,destinationrules.networking.istio.io,"
                                     "serviceentries.networking.istio.io,gateways.networking.istio.io,"
                                     "sidecars.networking.istio.io,peerauthentications.security.istio.io,"
                                     "authorizationpolicies.security.istio.io -n x -o json)")
