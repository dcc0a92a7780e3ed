"""canary promote --to (absolute, idempotent), a refusal's live and requested state apart, and
canary finish: the canary becomes the stable in three ordered writes."""

from __future__ import annotations

import json

from kubectl_mesh.traffic import CANARY_ANNOTATION
from tests.commands.istio_objects import (
    DR_RESOURCE,
    NS,
    SERVICE_READ,
    VS_RESOURCE,
    Writes,
    calls,
    dr,
    register_patch,
    register_service_read,
    service,
    subset,
    version_pods,
    vs,
    weighted,
)
from tests.helpers import api_calls
from tests.schema import assert_valid

ROLES = '{"canary":"canary","stable":"stable"}'
FINISHED = '{"stable":"stable","finished":"canary"}'


def _pods(canary_ready=True):
    return [*version_pods("v1", 2), *version_pods("v2", 1, ready=canary_ready)]


def _rule(stable="v1", extra=()):
    return dr(subsets=[subset("stable", stable), subset("canary", "v2"), *extra],
              policy={"loadBalancer": {"simple": "LEAST_REQUEST"}})


def _route(stable=0, canary=100, annotation=ROLES):
    return vs(http=[weighted(("stable", stable), ("canary", canary))], annotations={CANARY_ANNOTATION: annotation})


# -- promote --to ------------------------------------------------------------------------------------
def test_promote_to_is_absolute_and_a_second_run_writes_nothing(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _rule(), _route(85, 15)])
    writes = Writes()
    register_patch(fp, writes, _route(85, 15))
    first = mesh_cli("canary", "promote", "my-app", "--to", "50", "-n", NS, "-o", "json")
    assert first.exit_code == 0, first.stderr
    assert writes.sent[0]["spec"]["http"] == [weighted(("stable", 50), ("canary", 50))]
    doc = first.json()
    assert doc["plan"][0]["reason"] == "canary 15 -> 50, stable 85 -> 50"
    assert doc["canary"]["canary"]["weight"] == 50 == doc["requested"]["canary"]["canary"]["weight"]
    assert_valid(doc)

    register_service_read(fp, [service(), *_pods(), _rule(), _route(50, 50)])
    before = len(api_calls(fp))
    again = mesh_cli("canary", "promote", "my-app", "--to", "50", "-n", NS, "-o", "json")
    assert again.exit_code == 0
    assert len(api_calls(fp)) == before + 1  # the read, no write
    assert again.json()["plan"][0]["status"] == "unchanged"


def test_a_refused_promote_reports_the_live_weight_and_the_requested_one_apart(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(canary_ready=False), _rule(), _route(85, 15)])
    result = mesh_cli("canary", "promote", "my-app", "--to", "50", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    doc = result.json()
    assert doc["refused"] is True and [c["id"] for c in doc["refusedBy"]] == ["canary-pods"]
    assert doc["canary"]["canary"]["weight"] == 15  # live
    assert doc["requested"]["canary"]["canary"]["weight"] == 50
    assert len(fp.calls) == 1
    assert_valid(doc)


def test_promote_options_exclude_each_other(fp, mesh_cli):
    result = mesh_cli("canary", "promote", "my-app", "--to", "50", "--full")
    assert result.exit_code == 2 and "give one of --to N, --step N and --full" in result.stderr
    assert mesh_cli("canary", "promote", "my-app", "--to", "101").exit_code == 2
    assert not fp.calls


# -- finish ---------------------------------------------------------------------------------------------
def test_finish_relabels_the_stable_then_routes_to_it_then_drops_the_canary_subset(fp, mesh_cli):
    rule, route = _rule(extra=[subset("debug", "v0")]), _route()
    register_service_read(fp, [service(), *_pods(), rule, route])
    writes = Writes()
    register_patch(fp, writes, rule, rv="11")
    register_patch(fp, writes, route, rv="21")
    relabelled = json.loads(json.dumps(rule))
    relabelled["spec"]["subsets"][0]["labels"] = {"version": "v2"}
    relabelled["metadata"]["resourceVersion"] = "11"
    fp.register(["kubectl", "get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(relabelled))
    register_patch(fp, writes, relabelled, rv="12")
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [c[:3] for c in calls(fp)] == [["kubectl", *SERVICE_READ[:2]], ["kubectl", "patch", DR_RESOURCE],
                                          ["kubectl", "patch", VS_RESOURCE], ["kubectl", "get", DR_RESOURCE],
                                          ["kubectl", "patch", DR_RESOURCE]]
    first, second, third = writes.sent
    # 1. both subsets select the canary's pods; the route still sends everything to the canary subset
    assert [(s["name"], s["labels"]) for s in first["spec"]["subsets"]] == [
        ("stable", {"version": "v2"}), ("canary", {"version": "v2"}), ("debug", {"version": "v0"})]
    # 2. all traffic to stable, the finish recorded
    assert second["spec"]["http"] == [{"route": [{"destination": {"host": "my-app", "subset": "stable"},
                                                  "weight": 100}]}]
    assert json.loads(second["metadata"]["annotations"][CANARY_ANNOTATION]) == json.loads(FINISHED)
    # 3. the canary subset gone, everything else kept
    assert [s["name"] for s in third["spec"]["subsets"]] == ["stable", "debug"]
    assert third["spec"]["trafficPolicy"] == {"loadBalancer": {"simple": "LEAST_REQUEST"}}
    doc = result.json()
    assert [s["status"] for s in doc["plan"]] == ["applied", "applied", "applied"]
    assert doc["canary"]["stable"] == {"subset": "stable", "labels": {"version": "v2"}, "weight": 100,
                                       "pods": {"ready": 1, "total": 1}}
    assert doc["canary"]["canary"] is None and doc["canary"]["active"] is False
    assert [s["name"] for s in doc["canary"]["subsets"]] == ["stable", "debug"]
    assert_valid(doc)


def test_finish_is_refused_before_a_full_promotion(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _rule(), _route(50, 50)])
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    (check,) = result.json()["refusedBy"]
    assert check["id"] == "promoted-fully"
    assert check["message"] == ("the canary has 50% of the traffic, not all of it: finishing now would move the "
                                "stable's 50% to version=v2 at once")
    assert "kubectl mesh canary promote my-app --full -n my-app" in check["hint"]
    assert len(fp.calls) == 1


def test_finish_is_refused_while_the_canary_has_no_ready_pod(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(canary_ready=False), _rule(), _route()])
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    assert [c["id"] for c in result.json()["refusedBy"]] == ["canary-pods"]


def test_finish_run_again_after_the_route_was_written_removes_only_the_subset(fp, mesh_cli):
    rule = _rule(stable="v2")
    register_service_read(fp, [service(), *_pods(), rule, vs(http=[weighted(("stable", 100))],
                                                             annotations={CANARY_ANNOTATION: FINISHED})])
    writes = Writes()
    fp.register(["kubectl", "get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(rule))
    register_patch(fp, writes, rule)
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert [s["name"] for s in writes.sent[0]["spec"]["subsets"]] == ["stable"]


def test_finish_when_already_finished_is_nothing_to_do(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[subset("stable", "v2")]),
                               vs(http=[weighted(("stable", 100))], annotations={CANARY_ANNOTATION: FINISHED})])
    result = mesh_cli("canary", "finish", "my-app", "-n", NS)
    assert result.exit_code == 0
    assert "✓ the canary of service my-app is finished" in result.stdout
    assert result.stdout.rstrip().endswith("nothing to do")
    assert len(fp.calls) == 1


def test_finish_keeps_a_canary_subset_another_virtualservice_routes_to(fp, mesh_cli):
    gateway_vs = vs("my-app-public", gateways=["istio-system/public"],
                    http=[{"route": [{"destination": {"host": "my-app", "subset": "canary"}}]}])
    rule, route = _rule(), _route()
    register_service_read(fp, [service(), *_pods(), rule, route, gateway_vs])
    writes = Writes()
    register_patch(fp, writes, rule)
    register_patch(fp, writes, route)
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert len(writes.sent) == 2  # no removal
    kept = next(c for c in result.json()["checks"] if c["id"] == "canary-subset-kept")
    assert kept["result"] == "warn" and "virtualservice/my-app-public" in kept["message"]


def test_finish_dry_run_writes_nothing_and_reports_the_live_state(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _rule(), _route()])
    fp.register(["kubectl", "get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(_rule()))
    result = mesh_cli("canary", "finish", "my-app", "-n", NS, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stdout
    doc = result.json()
    assert [s["status"] for s in doc["plan"]] == ["planned", "planned", "planned"]
    assert doc["canary"]["canary"]["weight"] == 100  # live
    assert doc["requested"]["canary"]["stable"] == {"subset": "stable", "labels": {"version": "v2"}, "weight": 100}
    assert not [c for c in calls(fp) if c[1] == "patch"]
