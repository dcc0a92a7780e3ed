"""describe, routes and verify for a developer whom istioctl's own calls are refused, through the
real kubectl: the istioctl stand-in asks the API server for what real istioctl needs (list pods
in istio-system to find istiod; create pods/portforward to read a proxy) with the user's
context, and fails with the API server's words as istioctl does. The plugin says which
permission is missing and falls back to its own view; nothing exits 4."""

from __future__ import annotations

import json

from tests.e2e.test_runbook_contract import APP

RBAC = "rbac.authorization.k8s.io"
# view in my-app, and read access to the Istio kinds there: no istio-system, no port-forward.
DEV_READS = f"""
apiVersion: {RBAC}/v1
kind: RoleBinding
metadata: {{name: dev-view, namespace: my-app}}
roleRef: {{apiGroup: {RBAC}, kind: ClusterRole, name: view}}
subjects: [{{apiGroup: {RBAC}, kind: User, name: dev}}]
---
apiVersion: {RBAC}/v1
kind: Role
metadata: {{name: istio-read, namespace: my-app}}
rules: [{{apiGroups: [networking.istio.io, security.istio.io], resources: ["*"], verbs: [get, list, watch]}}]
---
apiVersion: {RBAC}/v1
kind: RoleBinding
metadata: {{name: dev-istio-read, namespace: my-app}}
roleRef: {{apiGroup: {RBAC}, kind: Role, name: istio-read}}
subjects: [{{apiGroup: {RBAC}, kind: User, name: dev}}]
"""
RBAC_STANDIN = {"ISTIOCTL_STANDIN_RBAC": "1"}


def _setup(e2e) -> str:
    e2e.cluster.load(APP + "---\n" + DEV_READS)
    e2e.cluster.add_user("dev", namespace="my-app")
    e2e.cluster.write_kubeconfig(e2e.kubeconfig)
    return sorted(p["metadata"]["name"] for p in e2e.cluster.list("pods", "my-app"))[0]


def _istioctl_calls(e2e) -> list[list[str]]:
    return [json.loads(line) for line in e2e.istioctl_log.read_text().splitlines()] \
        if e2e.istioctl_log.exists() else []


def test_describe_refused_by_istioctl_names_the_permission_and_falls_back(e2e, mesh):
    pod = _setup(e2e)
    admin = json.loads(mesh("describe", pod, "-n", "my-app", "-o", "json", env=RBAC_STANDIN).stdout)
    # the stand-in answers whoever may: istioctl's own description, no skipped check
    assert admin["describe"].get("source") != "kubectl-mesh" and not any(c["result"] == "skip" for c in admin["checks"])

    result = mesh("describe", pod, "--context", "dev", "-o", "json", env=RBAC_STANDIN)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    skip = next(c for c in doc["checks"] if c["id"] == "istioctl-describe")
    assert skip["result"] == "skip" and "needs list pods in istio-system" in skip["message"]
    assert (skip["verb"], skip["resource"], skip["namespace"]) == ("list", "pods", "istio-system")
    assert doc["describe"]["source"] == "kubectl-mesh"
    assert [s["name"] for s in doc["describe"]["services"]] == ["my-app"]
    assert "dev" in _istioctl_calls(e2e)[-1]  # istioctl was run with the user's context
    text = mesh("describe", pod, "--context", "dev", env=RBAC_STANDIN)
    assert text.returncode == 0 and "list pods in istio-system" in text.stdout, text.stdout + text.stderr


def test_routes_refused_by_istioctl_says_port_forward_is_missing(e2e, mesh):
    pod = _setup(e2e)
    result = mesh("routes", pod, "--context", "dev", "-o", "json", env=RBAC_STANDIN)
    assert result.returncode == 0, result.stdout + result.stderr
    check = json.loads(result.stdout)["checks"][0]
    assert check["result"] == "skip" and "needs create pods/portforward in my-app" in check["message"]
    assert f"kubectl mesh describe {pod} -n my-app" in check["message"]


def test_verify_as_the_developer_skips_istioctl_checks_naming_the_permission(e2e, mesh):
    _setup(e2e)
    result = mesh("verify", "--context", "dev", "-o", "json", env=RBAC_STANDIN)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    skipped = [c for c in doc["checks"] if c["id"] == "istioctl-failed"]
    assert skipped and all(c["result"] == "skip" for c in skipped)
    assert any("needs list pods in istio-system" in c["message"] for c in skipped), skipped
