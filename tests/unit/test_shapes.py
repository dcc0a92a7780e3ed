"""The shared JSON shapes (kubectl_mesh.shapes) and the published schema they follow."""

from __future__ import annotations

import copy

import pytest

from kubectl_mesh import errors, shapes
from kubectl_mesh.report import FAIL, PASS, Check, Report, Step, error_document
from kubectl_mesh.snapshot import Snapshot
from tests.commands.istio_objects import dr, service, subset, version_pods, vs, weighted
from tests.helpers import deployment_with_pods, namespace, pod
from tests.schema import SCHEMA_PATH, assert_valid, output_format, problems

NS = "my-app"
STRICT = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "default", "namespace": NS, "creationTimestamp": "2024-01-01T00:00:00Z"},
          "spec": {"mtls": {"mode": "STRICT"}}}
ROLES = '{"stable": "stable", "canary": "canary"}'


def _snapshot(*extra) -> Snapshot:
    return Snapshot([namespace(NS, {"istio-injection": "enabled"}),
                     *deployment_with_pods("web", sidecar="container"),
                     *deployment_with_pods("legacy", pods=1),
                     pod("opted", labels={"app": "opted", "sidecar.istio.io/inject": "false"}),
                     *extra], istio_crds=True)


def _canary_snapshot(stable_weight=90, canary_weight=10) -> Snapshot:
    return Snapshot([namespace(NS, {"istio-injection": "enabled"}), service(),
                     *version_pods("v1", 2), *version_pods("v2", 1),
                     dr(subsets=[subset("stable", "v1"), subset("canary", "v2"), subset("old", "v0")]),
                     vs(http=[weighted(("stable", stable_weight), ("canary", canary_weight))],
                        annotations={"kubectl-mesh.io/canary": ROLES})], istio_crds=True)


def _doc(command: str, **data) -> dict:
    report = Report(command=command)
    report.data.update(data)
    return report.as_dict()


def test_the_schema_is_published_where_the_docs_say():
    assert SCHEMA_PATH.name == "kubectl-mesh.v1.schema.json" and SCHEMA_PATH.exists()
    assert (SCHEMA_PATH.parent / "README.md").exists()


def test_namespace_state_has_one_shape_for_the_mtls_mode():
    state = shapes.namespace_state(_snapshot(STRICT), NS, with_workloads=True)
    assert state["name"] == NS
    assert state["injection"] == {"mode": "enabled", "labels": {"istio-injection": "enabled"}}
    assert state["mtls"] == {"mode": "STRICT", "source": "PeerAuthentication my-app/default (namespace-wide)",
                             "ports": []}
    assert state["pods"] == {"total": 4, "ready": 4, "meshed": 2, "missingSidecar": 1, "optedOut": 1,
                             "proxyNotReady": 0}
    by_ref = {w["ref"]: w for w in state["workloads"]}
    assert by_ref["deployment/web"]["pods"]["meshed"] == 2
    assert by_ref["deployment/web"]["layout"] == ["container"]
    assert by_ref["deployment/legacy"]["podNames"]["missingSidecar"] == ["legacy-5d9f8c7b6-p0"]
    assert by_ref["pod/opted"]["podNames"]["optedOut"] == ["opted"]
    assert by_ref["deployment/web"]["mtls"]["mode"] == "STRICT"
    assert_valid(_doc("status", namespaces=[state]))


def test_namespace_without_istio_has_no_mtls_mode():
    snapshot = Snapshot([namespace(NS)], istio_crds=False)
    state = shapes.namespace_state(snapshot, NS)
    assert state["mtls"] is None and state["injection"]["mode"] == "none"
    assert_valid(_doc("verify", namespaces=[state]))


def test_canary_shape():
    doc = shapes.canary(_canary_snapshot(), service())
    assert doc["active"] is True
    assert doc["stable"] == {"subset": "stable", "labels": {"version": "v1"}, "weight": 90,
                             "pods": {"ready": 2, "total": 2}}
    assert doc["canary"]["weight"] == 10
    assert doc["destinationRules"] == ["my-app"] and doc["virtualServices"] == ["my-app"]
    assert {s["name"]: (s["role"], s["weight"], s["percent"]) for s in doc["subsets"]} == {
        "stable": ("stable", 90, 90.0), "canary": ("canary", 10, 10.0), "old": (None, None, 0.0)}
    assert_valid(_doc("canary status", canary=doc))


def test_canary_shows_the_objects_a_command_wrote_in_place_of_those_read():
    snapshot = _canary_snapshot()
    written = vs(http=[weighted(("stable", 50), ("canary", 50))], annotations={"kubectl-mesh.io/canary": ROLES})
    doc = shapes.canary(snapshot, service(), written=[written])
    assert (doc["stable"]["weight"], doc["canary"]["weight"]) == (50, 50)
    assert shapes.canary(snapshot, service())["canary"]["weight"] == 10  # the snapshot itself is untouched


def test_no_canary():
    snapshot = Snapshot([namespace(NS), service(), *version_pods("v1", 1)], istio_crds=True)
    doc = shapes.canary(snapshot, service())
    assert doc["active"] is False and doc["stable"] is None and doc["canary"] is None
    assert_valid(_doc("canary status", canary=doc))


def test_circuit_breaker_shape():
    policy = {"connectionPool": {"tcp": {"maxConnections": 100}}, "outlierDetection": {"consecutive5xxErrors": 5},
              "loadBalancer": {"simple": "ROUND_ROBIN"}}
    snapshot = Snapshot([namespace(NS), service(), dr(policy=policy)], istio_crds=True)
    doc = shapes.circuit_breaker(snapshot, "my-app.my-app.svc.cluster.local", NS)
    assert doc == {"service": "my-app", "namespace": NS, "host": "my-app.my-app.svc.cluster.local",
                   "destinationRules": ["my-app"], "source": "my-app",
                   "settings": {"connectionPool": {"tcp": {"maxConnections": 100}},
                                "outlierDetection": {"consecutive5xxErrors": 5}},
                   "limits": {"maxConnections": 100, "consecutive5xxErrors": 5}, "ignored": []}
    assert shapes.circuit_breakers(snapshot, NS) == [doc]
    assert_valid(_doc("circuit-breaker status", circuitBreaker=doc))


def test_every_document_has_the_envelope():
    doc = Report(command="verify").as_dict()
    assert {k: doc[k] for k in ("schemaVersion", "command", "success", "refused", "refusedBy", "dryRun")} == {
        "schemaVersion": "v1", "command": "verify", "success": True, "refused": False, "refusedBy": [],
        "dryRun": False}


def test_a_refusal_names_the_checks_that_refused():
    report = Report(command="mtls")
    report.add(Check("current-mode", "mode", "namespace/x", PASS, "current mode PERMISSIVE"))
    report.refuse(Check("sidecars", "sidecars", "namespace/x", FAIL, "1 of 2 pods have no sidecar", "enable"))
    doc = report.as_dict()
    assert doc["refused"] is True and doc["success"] is False
    assert [c["id"] for c in doc["refusedBy"]] == ["sidecars"]
    assert report.exit_code == 3


def test_a_refusal_flagged_without_refuse_is_attributed_to_the_failed_checks():
    report = Report(command="canary")
    report.add(Check("canary-pods", "pods", "subset/canary", FAIL, "no ready pod"))
    report.refused = True
    assert [c["id"] for c in report.as_dict()["refusedBy"]] == ["canary-pods"]


def test_a_raised_refusal_has_the_same_shape():
    doc = error_document(errors.Refused("namespace x uses ambient mode; --force switches it"), command="enable")
    assert doc["refused"] is True and doc["error"]["exitCode"] == 3
    assert doc["refusedBy"][0]["message"].startswith("namespace x uses ambient mode")
    assert_valid(doc)


def test_an_error_document_follows_the_schema():
    doc = error_document(errors.UsageError("No such command 'enabel'."))
    assert doc["error"] == {"type": "UsageError", "message": "No such command 'enabel'.", "exitCode": 2}
    assert_valid(doc)


def test_the_schema_catches_a_fact_in_another_shape():
    state = shapes.namespace_state(_snapshot(), NS, with_workloads=True)
    wrong = copy.deepcopy(state)
    wrong["workloads"][0]["pods"] = 2  # a bare number where every command has an object
    assert any("workloads[0].pods" in p for p in problems(_doc("verify", namespaces=[wrong])))
    wrong = copy.deepcopy(state)
    wrong["mtls"]["mode"] = "strict"
    assert problems(_doc("verify", namespaces=[wrong]))
    assert any("namespaces" in p for p in problems(_doc("status")))  # status without its namespaces


def test_the_schema_accepts_added_properties():
    state = shapes.namespace_state(_snapshot(), NS)
    state["somethingNew"] = {"x": 1}
    doc = _doc("status", namespaces=[state])
    doc["checks"] = [Check("mtls-mode", "mtls", "namespace/x", "skip", "unknown",
                           data={"verb": "list", "resource": "peerauthentications.security.istio.io",
                                 "namespace": "istio-system"}).as_dict()]
    doc["plan"] = [Step("route", "virtualservice/x", "kubectl patch ...", "weights", "unknown").as_dict()]
    doc["aFutureField"] = [1, 2]
    assert_valid(doc)


@pytest.mark.parametrize("args,expected", [
    (["verify", "-o", "json"], "json"), (["-ojson", "status"], "json"), (["--output=yaml"], "yaml"),
    (["--output", "json"], "json"), (["-o", "text"], None), (["verify"], None), (["--", "-o", "json"], None),
])
def test_output_format_from_arguments(args, expected):
    assert output_format(args) == expected


def test_breaker_limits_never_give_one_name_to_two_fields():
    """tcpKeepalive.interval is not outlier detection's interval; idleTimeout set for tcp and
    for http keeps both (it went under one name, the last one winning)."""
    from kubectl_mesh.shapes import flatten_limits

    settings = {"connectionPool": {"tcp": {"maxConnections": 100, "idleTimeout": "1h",
                                           "tcpKeepalive": {"time": "7200s", "interval": "75s"}},
                                   "http": {"http1MaxPendingRequests": 50, "idleTimeout": "5m"}},
                "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s"}}
    assert flatten_limits(settings) == {
        "maxConnections": 100, "tcpKeepalive.interval": "75s", "tcpKeepalive.time": "7200s", "tcp.idleTimeout": "1h",
        "http1MaxPendingRequests": 50, "http.idleTimeout": "5m", "consecutive5xxErrors": 5, "interval": "30s"}


def test_breaker_limits_of_the_guide_keep_their_own_names_in_its_order():
    from kubectl_mesh.shapes import flatten_limits

    settings = {"outlierDetection": {"maxEjectionPercent": 50, "interval": "30s", "consecutive5xxErrors": 5},
                "connectionPool": {"http": {"http2MaxRequests": 100, "http1MaxPendingRequests": 50},
                                   "tcp": {"maxConnections": 100}}}
    assert list(flatten_limits(settings).items()) == [
        ("maxConnections", 100), ("http1MaxPendingRequests", 50), ("http2MaxRequests", 100),
        ("consecutive5xxErrors", 5), ("interval", "30s"), ("maxEjectionPercent", 50)]
