"""mtls, canary, circuit-breaker and sidecar-resources through the real kubectl against the
local test API server: the guide's steps 2 to 4 and its "high latency" fix."""

from __future__ import annotations

import json

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: my-app, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-app-v1, namespace: my-app}
spec:
  replicas: 2
  selector: {matchLabels: {app: my-app, version: v1}}
  template:
    metadata: {labels: {app: my-app, version: v1}}
    spec: {containers: [{name: app, image: "my-app:1"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-app-v2, namespace: my-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: my-app, version: v2}}
  template:
    metadata: {labels: {app: my-app, version: v2}}
    spec: {containers: [{name: app, image: "my-app:2"}]}
---
apiVersion: v1
kind: Service
metadata: {name: my-app, namespace: my-app}
spec:
  selector: {app: my-app}
  ports: [{name: http, port: 80}]
"""

# Written by hand before the plugin: a custom traffic policy and an extra subset.
EXISTING_DR = """
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: my-app-traffic
  namespace: my-app
  labels: {team: payments}
  annotations: {owner: platform}
spec:
  host: my-app.my-app.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: debug
    labels: {version: v1, track: debug}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
"""
SET = ("canary", "my-app", "--stable", "v1", "--canary", "v2", "-n", "my-app")


def _get(kubectl, kind, name, ns="my-app"):
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def _weights(kubectl, name="my-app"):
    service_vs = _get(kubectl, "virtualservices.networking.istio.io", name)
    route = next(r for r in service_vs["spec"]["http"] if not r.get("match"))
    return {d["destination"]["subset"]: d["weight"] for d in route["route"]}


def _ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_canary_10_promote_full_rollback_keeps_the_existing_rule(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR)
    before = _get(kubectl, "destinationrules.networking.istio.io", "my-app-traffic")

    first = _ok(mesh(*SET, "--weight", "10"))
    assert "✓ subsets destinationrule/my-app-traffic" in first.stdout
    assert "✓ route virtualservice/my-app" in first.stdout
    assert "    restore: kubectl --context test replace -f " in first.stdout
    assert _weights(kubectl) == {"stable": 90, "canary": 10}

    rule = _get(kubectl, "destinationrules.networking.istio.io", "my-app-traffic")
    assert rule["spec"]["trafficPolicy"] == before["spec"]["trafficPolicy"]
    assert rule["spec"]["subsets"][0] == before["spec"]["subsets"][0]  # the extra subset, untouched
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["debug", "stable", "canary"]
    assert rule["metadata"]["labels"] == {"team": "payments"}
    # annotations byte for byte, kubectl apply's last-applied-configuration included
    assert rule["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in before["metadata"]["annotations"]
    assert len(kubectl("get", "destinationrules.networking.istio.io", "-n", "my-app", "-o", "name")
               .stdout.split()) == 1  # merged, never a second rule

    _ok(mesh("canary", "promote", "my-app", "-n", "my-app"))
    assert _weights(kubectl) == {"stable": 80, "canary": 20}
    _ok(mesh("canary", "promote", "my-app", "--full", "-n", "my-app"))
    assert _weights(kubectl) == {"stable": 0, "canary": 100}
    writes = len(e2e.cluster.requests.writes())
    again = _ok(mesh("canary", "promote", "my-app", "--full", "-n", "my-app", "-o", "json"))
    assert [s["status"] for s in json.loads(again.stdout)["plan"]] == ["unchanged"]
    assert len(e2e.cluster.requests.writes()) == writes

    back = _ok(mesh("canary", "rollback", "my-app", "-n", "my-app", "-o", "json"))
    assert [(s["target"], s["status"]) for s in json.loads(back.stdout)["plan"]] == [
        ("virtualservice/my-app", "applied")]
    assert _weights(kubectl) == {"stable": 100, "canary": 0}
    writes = len(e2e.cluster.requests.writes())
    assert json.loads(_ok(mesh("canary", "rollback", "my-app", "-n", "my-app", "-o", "json")).stdout)["plan"][0][
        "status"] == "unchanged"
    assert len(e2e.cluster.requests.writes()) == writes

    final = _get(kubectl, "destinationrules.networking.istio.io", "my-app-traffic")
    assert final["spec"]["trafficPolicy"] == before["spec"]["trafficPolicy"]
    assert final["spec"]["subsets"][0] == before["spec"]["subsets"][0]

    status = _ok(mesh("canary", "status", "my-app", "-n", "my-app", "-o", "json"))
    doc = json.loads(status.stdout)["canary"]
    assert doc["stable"] == {"subset": "stable", "labels": {"version": "v1"}, "weight": 100,
                             "pods": {"ready": 2, "total": 2}}
    assert {s["name"]: s["pods"] for s in doc["subsets"]} == {
        "debug": {"ready": 0, "total": 0}, "stable": {"ready": 2, "total": 2}, "canary": {"ready": 1, "total": 1}}


def test_circuit_breaker_after_canary_lands_in_the_same_rule(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    _ok(mesh(*SET, "--weight", "10"))
    result = _ok(mesh("circuit-breaker", "my-app", "-n", "my-app", "-o", "json"))
    assert json.loads(result.stdout)["plan"][0]["target"] == "destinationrule/my-app"
    names = kubectl("get", "destinationrules.networking.istio.io", "-n", "my-app", "-o", "name").stdout.split()
    assert names == ["destinationrule.networking.istio.io/my-app"]
    rule = _get(kubectl, "destinationrules.networking.istio.io", "my-app")
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["stable", "canary"]
    assert rule["spec"]["trafficPolicy"] == {
        "connectionPool": {"tcp": {"maxConnections": 100},
                           "http": {"h2UpgradePolicy": "DEFAULT", "http1MaxPendingRequests": 50,
                                    "http2MaxRequests": 100}},
        "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "60s",
                             "maxEjectionPercent": 50}}
    status = _ok(mesh("circuit-breaker", "status", "my-app", "-n", "my-app"))
    assert "connectionPool.tcp.maxConnections: 100" in status.stdout

    _ok(mesh("circuit-breaker", "remove", "my-app", "-n", "my-app"))
    rule = _get(kubectl, "destinationrules.networking.istio.io", "my-app")
    assert "trafficPolicy" not in rule["spec"] and len(rule["spec"]["subsets"]) == 2
    assert _weights(kubectl) == {"stable": 90, "canary": 10}


def test_circuit_breaker_refuses_when_two_rules_define_the_host(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: my-app-second, namespace: my-app}
spec: {host: my-app}
""")
    writes = len(e2e.cluster.requests.writes())
    result = mesh("circuit-breaker", "my-app", "-n", "my-app")
    assert result.returncode == 3, result.stdout
    # oldest first, then by name, as Istio orders them
    line = next(x for x in result.stdout.splitlines() if "DestinationRules define host" in x)
    assert line.startswith("✗ 2 DestinationRules define host my-app.my-app.svc.cluster.local: ")
    assert "my-app-traffic" in line and "my-app-second" in line
    assert len(e2e.cluster.requests.writes()) == writes


def test_strict_mtls_refused_while_a_pod_lacks_a_sidecar_then_accepted_after_enable(e2e, kubectl, mesh):
    e2e.cluster.load(APP.replace("labels: {istio-injection: enabled}", "labels: {}"))
    refused = mesh("mtls", "my-app", "strict")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "3 of 3 pods have no sidecar in my-app: deployment/my-app-v1" in refused.stdout
    assert "kubectl mesh enable my-app" in refused.stdout
    assert kubectl("get", "peerauthentications.security.istio.io", "-n", "my-app", "-o", "name").stdout == ""

    _ok(mesh("enable", "my-app"))
    accepted = _ok(mesh("mtls", "my-app", "strict", "-o", "json"))
    doc = json.loads(accepted.stdout)
    assert doc["namespaces"][0]["mtls"]["mode"] == "STRICT"
    assert all(w["pods"]["meshed"] == w["pods"]["total"] for w in doc["namespaces"][0]["workloads"])
    policy = _get(kubectl, "peerauthentications.security.istio.io", "default")
    assert policy["spec"] == {"mtls": {"mode": "STRICT"}}
    status = _ok(mesh("mtls", "my-app", "status", "-o", "json"))
    modes = {w["ref"]: w["mtls"]["mode"] for w in json.loads(status.stdout)["namespaces"][0]["workloads"]}
    assert modes == {"deployment/my-app-v1": "STRICT", "deployment/my-app-v2": "STRICT"}
    writes = len(e2e.cluster.requests.writes())
    _ok(mesh("mtls", "my-app", "strict"))
    assert len(e2e.cluster.requests.writes()) == writes


def test_a_forced_conflict_during_canary_is_retried_and_the_concurrent_change_kept(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR)

    def concurrent_edit(cluster):
        rule = cluster.get("destinationrules.networking.istio.io", "my-app", "my-app-traffic")
        rule["spec"]["subsets"].append({"name": "hotfix", "labels": {"version": "v1", "hotfix": "1"}})
        rule["metadata"]["annotations"]["edited"] = "concurrently"
        cluster.update(rule)

    e2e.cluster.on_next_write("destinationrules", concurrent_edit)
    result = _ok(mesh(*SET, "--weight", "10"))
    assert "changed since it was read; reading it again and merging" in result.stderr
    rule = _get(kubectl, "destinationrules.networking.istio.io", "my-app-traffic")
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["debug", "hotfix", "stable", "canary"]
    assert rule["metadata"]["annotations"]["edited"] == "concurrently"
    assert _weights(kubectl) == {"stable": 90, "canary": 10}


def test_conflicts_from_the_server_are_retried(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR)
    e2e.cluster.conflict_next_write("virtualservices", count=2)
    _ok(mesh(*SET, "--weight", "30"))
    assert _weights(kubectl) == {"stable": 70, "canary": 30}


def test_forbidden_patch_exits_4_with_nothing_half_written(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    before = _get(kubectl, "deployments.apps", "my-app-v1")
    e2e.cluster.forbid("patch", "deployments")
    result = mesh("sidecar-resources", "deploy/my-app-v1", "-n", "my-app", "--cpu", "200m", "--memory", "256Mi",
                  "-o", "json")
    assert result.returncode == 4, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["error"]["type"] == "Forbidden" and doc["plan"] == []
    after = _get(kubectl, "deployments.apps", "my-app-v1")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_forbidden_first_write_of_canary_writes_nothing(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR)
    e2e.cluster.forbid(["update", "create", "patch"], "destinationrules")
    writes = len(e2e.cluster.requests.writes())
    result = mesh(*SET, "--weight", "10")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "not changed: virtualservice/my-app" in result.stdout
    assert "✗ not allowed: create or patch destinationrules.networking.istio.io/my-app-traffic in my-app" in result.stdout
    assert kubectl("get", "virtualservices.networking.istio.io", "-n", "my-app", "-o", "name").stdout == ""
    assert len(e2e.cluster.requests.writes()) == writes  # refused by the access review, before any write


def test_canary_refused_while_the_canary_has_no_ready_pod(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    result = mesh("canary", "my-app", "--stable", "v1", "--canary", "v3", "--weight", "10", "-n", "my-app")
    assert result.returncode == 3
    assert "canary subset canary (version=v3) selects no ready pod: app=my-app,version=v3 matched 0 pods" \
        in result.stdout
    assert kubectl("get", "destinationrules.networking.istio.io", "-n", "my-app", "-o", "name").stdout == ""


def test_dry_run_writes_nothing(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP + "---" + EXISTING_DR)
    writes = len(e2e.cluster.requests.writes())
    result = _ok(mesh(*SET, "--weight", "10", "--dry-run"))
    assert "+++ b/destinationrule/my-app-traffic -n my-app" in result.stdout
    assert "+++ b/virtualservice/my-app -n my-app" in result.stdout
    _ok(mesh("circuit-breaker", "my-app", "-n", "my-app", "--dry-run"))
    _ok(mesh("mtls", "my-app", "permissive", "--dry-run"))
    _ok(mesh("sidecar-resources", "deploy/my-app-v1", "-n", "my-app", "--cpu", "1", "--memory", "1Gi", "--dry-run"))
    assert len(e2e.cluster.requests.writes()) == writes


def test_sidecar_resources_roll_out_to_the_proxies(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    result = _ok(mesh("sidecar-resources", "deploy/my-app-v1", "-n", "my-app", "--cpu", "200m", "--memory",
                      "256Mi", "--cpu-limit", "1", "--memory-limit", "1Gi", "-o", "json"))
    doc = json.loads(result.stdout)
    assert [c["result"] for c in doc["checks"]] == ["pass", "pass", "pass"]
    assert "waiting for deployment/my-app-v1 in my-app" in result.stderr
    pods = json.loads(kubectl("get", "pods", "-n", "my-app", "-l", "version=v1", "-o", "json").stdout)["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live
    for pod in live:
        proxy = next(c for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
                     if c["name"] == "istio-proxy")
        assert proxy["resources"]["requests"] == {"cpu": "200m", "memory": "256Mi"}
    writes = len(e2e.cluster.requests.writes())
    again = _ok(mesh("sidecar-resources", "deploy/my-app-v1", "-n", "my-app", "--cpu", "200m", "--memory",
                     "256Mi", "--cpu-limit", "1", "--memory-limit", "1Gi", "-o", "json"))
    assert json.loads(again.stdout)["plan"][0]["status"] == "unchanged"
    assert len(e2e.cluster.requests.writes()) == writes
