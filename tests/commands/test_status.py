"""status at the process boundary: one batched read, one screen per namespace, the
same as data with -o json."""

from __future__ import annotations

import pytest

from tests.commands.istio_objects import dr, service, version_pods, vs
from tests.commands.test_diagnose import KINDS, READ_ALL, READ_NAMESPACE, READ_NS
from tests.commands.test_diagnose import register as register_read
from tests.helpers import ROOT_PA, calls_made, deployment_with_pods, kube_list, namespace

NS = "my-app"
ENABLED = namespace(NS, {"istio-injection": "enabled"})
STRICT = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "strict-mtls", "namespace": NS}, "spec": {"mtls": {"mode": "STRICT"}}}
BREAKER = {"connectionPool": {"tcp": {"maxConnections": 100}, "http": {"http1MaxPendingRequests": 50}},
           "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "60s",
                                "maxEjectionPercent": 50}}
SUBSETS = [{"name": "stable", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}]
ROUTE_90_10 = [{"route": [{"destination": {"host": "my-app", "subset": "stable"}, "weight": 90},
                          {"destination": {"host": "my-app", "subset": "canary"}, "weight": 10}]}]


def guide_namespace():
    """The guide's namespace: injection, strict mTLS, a 90/10 canary, a circuit breaker,
    and one workload created before the label."""
    return [ENABLED, STRICT, service(), *version_pods("v1", 3), *version_pods("v2", 1, ready=False),
            dr(subsets=SUBSETS), vs(http=ROUTE_90_10),
            service("backend-api"), *deployment_with_pods("backend-api", sidecar="container"),
            dr("backend-api", "backend-api", policy=BREAKER),
            *deployment_with_pods("legacy")]


def register(fp, objects, read=READ_NS, root=True):
    register_read(fp, objects, read=read, root=root)


def test_one_screen_from_one_batched_read(fp, mesh_cli):
    register(fp, guide_namespace())
    result = mesh_cli("status", NS)
    assert result.exit_code == 0, result.stderr
    assert calls_made(fp) == [READ_NS, READ_NAMESPACE, ["kubectl", *ROOT_PA]]
    assert result.stdout.splitlines() == [
        "Namespace my-app",
        "  Injection:        istio-injection=enabled",
        "  Pods:             6/8 meshed (2 lacking the sidecar; restart deployment/legacy)",
        "  mTLS:             STRICT (PeerAuthentication my-app/strict-mtls, namespace-wide)",
        "  Canaries:         my-app: stable 90% (3/3 ready), canary 10% (0/1 ready)",
        "  Circuit breakers: backend-api: maxConnections=100 http1MaxPendingRequests=50 consecutive5xxErrors=5 "
        "interval=30s baseEjectionTime=60s maxEjectionPercent=50",
        "  Findings:         1 error, 1 warning, 0 info (kubectl mesh diagnose my-app)",
    ]


def test_json_gives_the_same_as_data(fp, mesh_cli):
    register(fp, guide_namespace())
    result = mesh_cli("status", NS, "-o", "json")
    assert result.exit_code == 0
    doc = result.json()
    assert (doc["success"], doc["checks"], doc["plan"]) == (True, [], [])
    (screen,) = doc["namespaces"]
    assert screen["name"] == NS
    assert screen["injection"] == {"mode": "enabled", "labels": {"istio-injection": "enabled"}}
    assert screen["pods"] == {"total": 8, "ready": 7, "meshed": 6, "missingSidecar": 2, "optedOut": 0,
                              "proxyNotReady": 0}
    legacy = next(w for w in screen["workloads"] if w["ref"] == "deployment/legacy")
    assert legacy["podNames"]["missingSidecar"] == ["legacy-5d9f8c7b6-p0", "legacy-5d9f8c7b6-p1"]
    assert screen["mtls"] == {"mode": "STRICT", "source": "PeerAuthentication my-app/strict-mtls (namespace-wide)",
                              "ports": []}
    assert [p["name"] for p in screen["peerAuthentications"]] == ["strict-mtls"]
    (canary,) = screen["canaries"]
    assert canary["service"] == "my-app" and canary["virtualServices"] == ["my-app"]
    assert canary["stable"] == {"subset": "stable", "labels": {"version": "v1"}, "weight": 90,
                                "pods": {"ready": 3, "total": 3}}
    assert canary["canary"]["weight"] == 10
    assert [(s["name"], s["weight"], s["percent"], s["pods"]) for s in canary["subsets"]] == [
        ("stable", 90, 90.0, {"ready": 3, "total": 3}), ("canary", 10, 10.0, {"ready": 0, "total": 1})]
    (breaker,) = screen["circuitBreakers"]
    assert breaker["service"] == "backend-api" and breaker["source"] == "backend-api"
    assert breaker["settings"] == BREAKER
    assert breaker["limits"]["maxConnections"] == 100 and breaker["ignored"] == []
    assert screen["findings"] == {"error": 1, "warning": 1, "info": 0, "suppressed": 0}


def test_an_unlabelled_namespace_without_istio_objects(fp, mesh_cli):
    register(fp, [namespace(NS), *deployment_with_pods("web")])
    result = mesh_cli("status", NS)
    assert "  Injection:        not labelled" in result.stdout
    assert "  Pods:             0/2 meshed" in result.stdout
    assert "  mTLS:             PERMISSIVE (mesh default)" in result.stdout
    assert "  Canaries:         none" in result.stdout
    assert "  Circuit breakers: none" in result.stdout
    assert "  Findings:         0 errors, 0 warnings, 1 info (kubectl mesh diagnose my-app)" in result.stdout
    assert result.exit_code == 0


def test_findings_suppressed_on_their_object_are_counted_apart_as_diagnose_does(fp, mesh_cli):
    quiet = namespace(NS, annotations={"galley.istio.io/analyze-suppress": "IST0102"})
    register(fp, [quiet, *deployment_with_pods("web")])
    result = mesh_cli("status", NS)
    assert "  Findings:         none; 1 suppressed" in result.stdout, result.stdout
    register(fp, [quiet, *deployment_with_pods("web")])
    doc = mesh_cli("status", NS, "-o", "json").json()
    assert doc["namespaces"][0]["findings"] == {"error": 0, "warning": 0, "info": 0, "suppressed": 1}


def test_weights_need_not_sum_to_100_and_ignored_breakers_are_named(fp, mesh_cli):
    http = [{"route": [{"destination": {"host": "my-app", "subset": "stable"}, "weight": 3},
                       {"destination": {"host": "my-app", "subset": "canary"}, "weight": 1}]}]
    later = dr("my-app-cb", "my-app", policy=BREAKER, created="2024-02-01T00:00:00Z")
    first = dr(subsets=SUBSETS, policy={"loadBalancer": {"simple": "LEAST_REQUEST"}})
    register(fp, [ENABLED, service(), *version_pods("v1"), *version_pods("v2"), first, later, vs(http=http)])
    result = mesh_cli("status", NS)
    assert "my-app: stable 75% (1/1 ready), canary 25% (1/1 ready)" in result.stdout
    assert "my-app: (none in force); ignored in my-app-cb" in result.stdout


def test_all_namespaces_one_screen_each_without_system_or_empty_ones(fp, mesh_cli):
    objects = [*guide_namespace(), namespace("batch"), *deployment_with_pods("report", "batch"),
               namespace("empty"), namespace("kube-system"), *deployment_with_pods("dns", "kube-system")]
    fp.register(READ_ALL, stdout=kube_list(*objects), occurrences=2)
    result = mesh_cli("status", "-A", "-o", "json")
    assert calls_made(fp) == [READ_ALL]
    assert [s["name"] for s in result.json()["namespaces"]] == ["batch", "my-app"]
    text = mesh_cli("status", "-A")
    assert text.stdout.startswith("Namespace batch\n")
    assert "\n\nNamespace my-app\n" in text.stdout


def test_without_namespace_the_contexts_is_used(fp, mesh_cli):
    fp.register(["kubectl", "config", "view", "--minify", "-o", "jsonpath={..namespace}"], stdout=NS)
    register(fp, [ENABLED])
    result = mesh_cli("status")
    assert result.stdout.startswith("Namespace my-app\n")


@pytest.mark.parametrize("output", ["text", "json"])
def test_unreachable_cluster_is_exit_4(fp, mesh_cli, output):
    fp.register(READ_NS, returncode=1, stderr="Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout\n")
    result = mesh_cli("status", NS, "-o", output)
    assert result.exit_code == 4
    assert "Unable to connect to the server" in result.stderr


def test_namespace_and_all_namespaces_is_bad_usage(fp, mesh_cli):
    assert mesh_cli("status", NS, "-A").exit_code == 2
    assert len(fp.calls) == 0


def test_kinds_read_include_nodes_for_topology_subsets():
    assert ",nodes," in KINDS
