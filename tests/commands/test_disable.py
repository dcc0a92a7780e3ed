"""disable: refusal under STRICT mTLS, label removal, restarts of meshed workloads."""

from __future__ import annotations

from tests.helpers import (
    deployment,
    deployment_with_pods,
    namespace,
    register_cluster,
    register_kubectl,
    register_rollouts,
)

ENABLED = namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="7")
UNLABEL = ["label", "namespace", "my-app", "istio-injection-", "--overwrite", "--resource-version=7"]


def _pa(name, ns, mode, selector=None):
    spec = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def test_refuses_while_strict_applies(fp, mesh_cli):
    register_cluster(fp, [ENABLED, _pa("strict-mtls", "my-app", "STRICT"), *deployment_with_pods("web", sidecar="container")])
    result = mesh_cli("disable", "my-app", "-o", "json")
    assert result.exit_code == 3
    doc = result.json()
    assert doc["success"] is False
    assert "PeerAuthentication my-app/strict-mtls (namespace-wide)" in doc["checks"][0]["message"]
    assert doc["checks"][0]["hint"].startswith("kubectl mesh mtls my-app permissive")
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0


def test_refuses_under_mesh_wide_and_workload_strict(fp, mesh_cli):
    register_cluster(fp, [ENABLED], root_policies=[_pa("default", "istio-system", "STRICT")])
    assert mesh_cli("disable", "my-app").exit_code == 3
    register_cluster(fp, [ENABLED, _pa("db", "my-app", "STRICT", selector={"app": "db"})])
    result = mesh_cli("disable", "my-app")
    assert result.exit_code == 3
    assert "PeerAuthentication my-app/db (workload)" in result.stdout


def test_force_overrides_the_refusal(fp, mesh_cli):
    register_cluster(fp, [ENABLED, _pa("strict-mtls", "my-app", "STRICT")])
    result = mesh_cli("disable", "my-app", "--force", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert result.json()["checks"][0]["result"] == "warn"
    assert result.json()["plan"][0]["command"] == "kubectl " + " ".join(UNLABEL)


def test_disable_removes_labels_restarts_meshed_and_checks(fp, mesh_cli):
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="container"), *deployment_with_pods("api")])
    register_kubectl(fp, UNLABEL)
    register_kubectl(fp, ["rollout", "restart", "deployment/web", "-n", "my-app"])
    register_rollouts(fp, deployment("web", replicas=2))
    register_cluster(fp, [namespace("my-app"), *deployment_with_pods("web"), *deployment_with_pods("api")])
    result = mesh_cli("disable", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert [(s["action"], s["target"], s["status"]) for s in doc["plan"]] == [
        ("label", "namespace/my-app", "applied"), ("restart", "deployment/web", "applied")]
    assert {c["result"] for c in doc["checks"]} == {"pass"}


def test_disable_twice_changes_nothing(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app"), *deployment_with_pods("web")], occurrences=2)
    result = mesh_cli("disable", "my-app")
    assert result.exit_code == 0
    assert "nothing to do" in result.stdout
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0


def test_sidecars_left_after_disable_fail(fp, mesh_cli):
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="native")])
    register_kubectl(fp, UNLABEL)
    register_kubectl(fp, ["rollout", "restart", "deployment/web", "-n", "my-app"])
    register_rollouts(fp, deployment("web", replicas=2))
    register_cluster(fp, [namespace("my-app"), *deployment_with_pods("web", sidecar="native")])
    result = mesh_cli("disable", "my-app")
    assert result.exit_code == 1
    assert "✗ deployment/web: 2 of 2 pods still carry istio-proxy" in result.stdout
