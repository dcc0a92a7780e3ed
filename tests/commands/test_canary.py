"""canary: exact kubectl calls, order of writes, dry run, refusals, conflicts, exit codes, JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubectl_mesh.traffic import CANARY_ANNOTATION
from tests.commands.istio_objects import (
    CONFLICT,
    CREATE,
    DR_RESOURCE,
    FORBIDDEN,
    NS,
    SERVICE_READ,
    VS_RESOURCE,
    Writes,
    calls,
    dr,
    patch_args,
    register_patch,
    register_service_read,
    register_write,
    service,
    subset,
    version_pods,
    vs,
    weighted,
)
from tests.helpers import api_calls, kube_list, register_kubectl

SET = ("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", "-n", NS)
ROLES = '{"canary":"canary","stable":"stable"}'


def _pods():
    return [*version_pods("v1", 2), *version_pods("v2", 1)]


def _guide_dr(**kw):
    return dr(subsets=[subset("stable", "v1"), subset("canary", "v2")], **kw)


def _guide_vs(stable=90, canary=10, annotate=True, **kw):
    return vs(http=[weighted(("stable", stable), ("canary", canary))],
              annotations={CANARY_ANNOTATION: ROLES} if annotate else None, **kw)


def _written(writes):
    return {o["kind"]: o for o in writes.sent}


# -- the default action ------------------------------------------------------------------------
def test_new_canary_creates_subsets_then_weights(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    writes = Writes()
    register_write(fp, writes, "create", rv="30")
    register_write(fp, writes, "create", rv="31")
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ], ["kubectl", *CREATE], ["kubectl", *CREATE]]
    assert writes.kinds() == ["DestinationRule", "VirtualService"]  # subsets first
    rule, service_vs = writes.sent
    assert rule == {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": "my-app", "namespace": NS},
                    "spec": {"host": "my-app", "subsets": [{"name": "stable", "labels": {"version": "v1"}},
                                                           {"name": "canary", "labels": {"version": "v2"}}]}}
    assert service_vs["apiVersion"] == "networking.istio.io/v1"
    assert service_vs["spec"] == {"hosts": ["my-app"], "http": [weighted(("stable", 90), ("canary", 10))]}
    assert service_vs["metadata"]["annotations"] == {CANARY_ANNOTATION: ROLES}
    doc = result.json()
    assert doc["success"] is True
    assert [(s["action"], s["target"], s["status"], s["command"]) for s in doc["plan"]] == [
        ("subsets", "destinationrule/my-app", "applied", "kubectl create -f - -o json"),
        ("route", "virtualservice/my-app", "applied", "kubectl create -f - -o json"),
    ]
    assert "restore" not in doc["plan"][0]  # nothing existed: nothing to restore
    canary = doc["canary"]  # as the command leaves it: the objects it wrote in place
    assert {k: canary[k] for k in ("service", "namespace", "host", "destinationRules", "virtualServices", "active")} \
        == {"service": "my-app", "namespace": NS, "host": "my-app.my-app.svc.cluster.local",
            "destinationRules": ["my-app"], "virtualServices": ["my-app"], "active": True}
    assert canary["stable"] == {"subset": "stable", "labels": {"version": "v1"}, "weight": 90,
                                "pods": {"ready": 2, "total": 2}}
    assert canary["canary"] == {"subset": "canary", "labels": {"version": "v2"}, "weight": 10,
                                "pods": {"ready": 1, "total": 1}}
    assert doc["requested"] == {"canary": {"stable": {"subset": "stable", "labels": {"version": "v1"}, "weight": 90},
                                           "canary": {"subset": "canary", "labels": {"version": "v2"}, "weight": 10}}}
    assert [(c["id"], c["result"]) for c in doc["checks"]] == [("stable-pods", "pass"), ("canary-pods", "pass")]


def test_text_output(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    writes = Writes()
    register_write(fp, writes, "create")
    register_write(fp, writes, "create")
    result = mesh_cli(*SET)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "Canary for service my-app in my-app: stable v1 90%, canary v2 10%"
    assert "✓ subsets destinationrule/my-app: subsets first, so that no route points at a missing subset " \
           "[applied]" in result.stdout
    assert "✓ canary subset canary (version=v2): 1/1 pod ready" in result.stdout
    assert result.stdout.rstrip().endswith("2 passed, 0 warnings, 0 failed; 2 applied")


def test_existing_rule_and_routes_survive_and_are_backed_up(fp, mesh_cli):
    policy = {"tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"simple": "LEAST_REQUEST"}}
    rule = dr(subsets=[subset("legacy", "v0", trafficPolicy={"tls": {"mode": "DISABLE"}})], policy=policy,
              labels={"team": "a"}, annotations={"note": "keep"})
    header_route = {"match": [{"headers": {"x-canary": {"exact": "1"}}}],
                    "route": [{"destination": {"host": "my-app", "subset": "legacy"}}]}
    catch_all = {"route": [{"destination": {"host": "my-app", "port": {"number": 80}}}],
                 "retries": {"attempts": 3}, "timeout": "5s"}
    service_vs = vs(http=[header_route, catch_all])
    register_service_read(fp, [service(), *_pods(), rule, service_vs])
    writes = Writes()
    register_patch(fp, writes, rule)
    register_patch(fp, writes, service_vs)
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ], ["kubectl", *patch_args(DR_RESOURCE, "my-app")],
                         ["kubectl", *patch_args(VS_RESOURCE, "my-app")]]
    # only what changes is sent, conditional on the resourceVersion read
    assert writes.patches[0] == {"spec": {"subsets": [subset("legacy", "v0", trafficPolicy={"tls": {"mode": "DISABLE"}}),
                                                      subset("stable", "v1"), subset("canary", "v2")]},
                                 "metadata": {"resourceVersion": "10"}}
    new_rule, new_vs = writes.sent
    assert new_rule["metadata"]["resourceVersion"] == "10"  # optimistic concurrency
    assert new_rule["metadata"]["labels"] == {"team": "a"} and new_rule["metadata"]["annotations"] == {"note": "keep"}
    assert new_rule["spec"]["trafficPolicy"] == policy
    assert new_rule["spec"]["subsets"] == [subset("legacy", "v0", trafficPolicy={"tls": {"mode": "DISABLE"}}),
                                           subset("stable", "v1"), subset("canary", "v2")]
    assert new_vs["metadata"]["resourceVersion"] == "20"
    assert new_vs["spec"]["http"][0] == header_route
    assert new_vs["spec"]["http"][1] == {
        "route": [{"destination": {"host": "my-app", "subset": "stable", "port": {"number": 80}}, "weight": 90},
                  {"destination": {"host": "my-app", "subset": "canary", "port": {"number": 80}}, "weight": 10}],
        "retries": {"attempts": 3}, "timeout": "5s"}
    plan = result.json()["plan"]
    for step, original in zip(plan, (rule, service_vs), strict=True):
        assert step["restore"] == f"kubectl replace -f {step['backup']}"
        saved = Path(step["backup"])
        assert saved.is_file() and f"/backups/current-context@unknown-server/{NS}/" in str(saved)
        import yaml

        restored = yaml.safe_load(saved.read_text())
        assert restored["spec"] == original["spec"]
        assert "resourceVersion" not in restored["metadata"]


def test_restore_hint_in_text_names_context(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[])], prefix=("--context", "prod"))
    writes = Writes()
    register_patch(fp, writes, dr(subsets=[]), prefix=("--context", "prod"))
    register_write(fp, writes, "create", prefix=("--context", "prod"))
    result = mesh_cli("--context", "prod", *SET)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    restores = [line for line in lines if line.startswith("    restore: ")]
    assert len(restores) == 1  # the rule existed; the route is new
    assert lines[lines.index(restores[0]) - 2].startswith("✓ subsets destinationrule/my-app")
    assert restores[0].startswith("    restore: kubectl --context prod replace -f ")
    assert "/backups/prod@unknown-server/my-app/" in restores[0]


def test_subset_with_the_same_labels_is_reused(fp, mesh_cli):
    rule = dr(subsets=[subset("v1", "v1"), subset("v2", "v2")])
    register_service_read(fp, [service(), *_pods(), rule])
    writes = Writes()
    register_write(fp, writes, "create")
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert writes.kinds() == ["VirtualService"]  # the rule already has both subsets
    doc = result.json()
    assert doc["plan"][0]["status"] == "unchanged" and doc["plan"][0]["target"] == "destinationrule/my-app"
    assert writes.sent[0]["spec"]["http"] == [weighted(("v1", 90), ("v2", 10))]
    assert json.loads(writes.sent[0]["metadata"]["annotations"][CANARY_ANNOTATION]) == {"stable": "v1", "canary": "v2"}
    assert doc["canary"]["stable"]["subset"] == "v1"
    assert "reusing subset v2" in " ".join(c["message"] for c in doc["checks"])


def test_next_release_after_full_promotion_gets_its_own_subset(fp, mesh_cli):
    # v2 took all traffic under the name "canary"; v3 becomes the next canary.
    objs = [service(), *version_pods("v2", 1), *version_pods("v3", 1), _guide_dr(), _guide_vs(0, 100)]
    register_service_read(fp, objs)
    writes = Writes()
    register_patch(fp, writes, _guide_dr())
    register_patch(fp, writes, _guide_vs(0, 100))
    result = mesh_cli("canary", "my-app", "--stable", "v2", "--canary", "v3", "--weight", "5", "-n", NS)
    assert result.exit_code == 0, result.stdout
    rule, service_vs = writes.sent
    assert rule["spec"]["subsets"][-1] == subset("canary-v3", "v3")
    assert service_vs["spec"]["http"][0]["route"] == weighted(("canary", 95), ("canary-v3", 5))["route"]


def test_dry_run_changes_nothing_and_shows_diffs(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[subset("legacy", "v0")])])
    result = mesh_cli(*SET, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ]]  # no write
    plan = result.json()["plan"]
    assert [s["status"] for s in plan] == ["planned", "planned"]
    assert plan[0]["diff"].startswith("--- a/destinationrule/my-app -n my-app\n+++ b/destinationrule/my-app -n my-app\n")
    assert "+  - name: stable\n" in plan[0]["diff"] and "-  - name: legacy" not in plan[0]["diff"]
    assert plan[1]["diff"].startswith("--- /dev/null\n+++ b/virtualservice/my-app -n my-app\n")
    assert "+      weight: 10\n" in plan[1]["diff"]
    assert "backup" not in plan[0]


def test_dry_run_text(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    result = mesh_cli(*SET, "--dry-run")
    assert "~ subsets destinationrule/my-app: subsets first, so that no route points at a missing subset " \
           "[planned]" in result.stdout
    assert "    +++ b/destinationrule/my-app -n my-app" in result.stdout
    assert "2 planned" in result.stdout
    assert len(api_calls(fp)) == 1


def test_second_run_plans_nothing(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    writes = Writes()
    register_write(fp, writes, "create", rv="30")
    register_write(fp, writes, "create", rv="31")
    assert mesh_cli(*SET).exit_code == 0
    stored = []
    for obj, rv in zip(writes.sent, ("30", "31"), strict=True):
        obj = json.loads(json.dumps(obj))
        obj["metadata"].update(resourceVersion=rv, creationTimestamp="2024-05-01T00:00:00Z")
        stored.append(obj)
    register_service_read(fp, [service(), *_pods(), *stored])
    before = len(api_calls(fp))
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == before + 1  # the read only
    assert [s["status"] for s in result.json()["plan"]] == ["unchanged", "unchanged"]


# -- refusals ----------------------------------------------------------------------------------
def test_refuses_when_canary_labels_select_no_ready_pod(fp, mesh_cli):
    objs = [service(), *version_pods("v1", 2), *version_pods("v2", 1, ready=False)]
    register_service_read(fp, objs)
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 3
    assert len(api_calls(fp)) == 1
    doc = result.json()
    assert doc["success"] is False and doc["plan"] == []
    failed = [c for c in doc["checks"] if c["result"] == "fail"]
    assert len(failed) == 1
    assert failed[0]["id"] == "canary-pods" and failed[0]["subject"] == "subset/canary"
    assert failed[0]["selector"] == {"app": "my-app", "version": "v2"}
    assert "app=my-app,version=v2 matched 1 pod, 0 ready" in failed[0]["message"]
    assert "kubectl get pods -n my-app -l app=my-app,version=v2 --show-labels" in failed[0]["hint"]


def test_refusal_text_and_force(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1)], occurrences=2)
    refused = mesh_cli(*SET)
    assert refused.exit_code == 3
    assert "✗ canary subset canary (version=v2) selects no ready pod" in refused.stdout
    assert "refused (use --force to override)" in refused.stdout
    writes = Writes()
    register_write(fp, writes, "create")
    register_write(fp, writes, "create")
    forced = mesh_cli(*SET, "--force")
    assert forced.exit_code == 0
    assert "! canary subset canary (version=v2) selects no ready pod" in forced.stdout
    assert writes.kinds() == ["DestinationRule", "VirtualService"]


def test_weight_zero_needs_no_canary_pods_and_weight_100_no_stable_pods(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1)])
    register_write(fp, Writes(), "create")
    register_write(fp, Writes(), "create")
    result = mesh_cli("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "0", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert [c["result"] for c in result.json()["checks"]] == ["pass", "skip"]
    register_service_read(fp, [service(), *version_pods("v2", 1)])
    result = mesh_cli("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "100", "-n", NS,
                      "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert [c["result"] for c in result.json()["checks"]] == ["skip", "pass"]


def test_refuses_several_destination_rules_for_the_host(fp, mesh_cli):
    rules = [dr("b-rule", "my-app.my-app.svc.cluster.local", created="2024-02-01T00:00:00Z"), dr("a-rule")]
    register_service_read(fp, [service(), *_pods(), *rules])
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 3
    check = next(c for c in result.json()["checks"] if c["id"] == "single-destination-rule")
    assert check["objects"] == ["a-rule", "b-rule"]
    assert "2 DestinationRules define host my-app.my-app.svc.cluster.local: a-rule, b-rule" in check["message"]
    assert len(api_calls(fp)) == 1


def test_force_with_several_rules_changes_the_oldest(fp, mesh_cli):
    rules = [dr("b-rule", created="2024-02-01T00:00:00Z"), dr("a-rule")]
    register_service_read(fp, [service(), *_pods(), *rules])
    writes = Writes()
    register_patch(fp, writes, rules[1])
    register_write(fp, writes, "create")
    result = mesh_cli(*SET, "--force")
    assert result.exit_code == 0, result.stdout
    assert writes.sent[0]["metadata"]["name"] == "a-rule"


def test_refuses_to_repoint_a_subset_that_has_traffic(fp, mesh_cli):
    objs = [service(), *version_pods("v1", 1), *version_pods("v3", 1), _guide_dr(), _guide_vs(90, 10)]
    register_service_read(fp, objs)
    result = mesh_cli("canary", "my-app", "--stable", "v1", "--canary", "v3", "--weight", "10", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    check = next(c for c in result.json()["checks"] if c["id"] == "subset-in-use")
    assert check["subject"] == "subset/canary" and check["from"] == {"version": "v2"}
    assert "canary rollback my-app" in check["hint"]


def test_repoints_a_subset_without_traffic(fp, mesh_cli):
    objs = [service(), *version_pods("v1", 1), *version_pods("v3", 1), _guide_dr(), _guide_vs(100, 0)]
    register_service_read(fp, objs)
    writes = Writes()
    register_patch(fp, writes, _guide_dr())
    register_patch(fp, writes, _guide_vs(100, 0))
    result = mesh_cli("canary", "my-app", "--stable", "v1", "--canary", "v3", "--weight", "10", "-n", NS)
    assert result.exit_code == 0, result.stdout
    assert writes.sent[0]["spec"]["subsets"] == [subset("stable", "v1"), subset("canary", "v3")]


def test_name_taken_by_a_rule_for_another_host(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr("my-app", "web")])
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 3
    assert result.json()["checks"][0]["id"] == "name-taken"


def test_a_gateway_only_virtual_service_of_that_name_is_not_taken_over(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), vs(http=[], gateways=["ingress"])])
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 3
    check = result.json()["checks"][-1]
    assert check["id"] == "name-taken"
    assert check["message"] == ("virtualservice/my-app already exists for gateways only (ingress), "
                                "not for the mesh's sidecars")


# -- concurrency and errors ---------------------------------------------------------------------
def test_conflict_is_retried_and_the_concurrent_change_kept(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[])])
    writes = Writes()
    register_patch(fp, writes, dr(subsets=[]), returncode=1, stderr=CONFLICT)
    concurrent = dr(subsets=[subset("hotfix", "v1-hotfix")], rv="11", policy={"tls": {"mode": "ISTIO_MUTUAL"}})
    register_kubectl(fp, ["get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(concurrent))
    register_patch(fp, writes, concurrent, rv="12")
    register_write(fp, writes, "create")
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ], ["kubectl", *patch_args(DR_RESOURCE, "my-app")],
                         ["kubectl", "get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"],
                         ["kubectl", *patch_args(DR_RESOURCE, "my-app")], ["kubectl", *CREATE]]
    first, second, _ = writes.sent
    assert first["metadata"]["resourceVersion"] == "10"
    assert second["metadata"]["resourceVersion"] == "11"
    assert second["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}
    assert [s["name"] for s in second["spec"]["subsets"]] == ["hotfix", "stable", "canary"]
    assert "changed since it was read; reading it again and merging (attempt 1 of 5)" in result.stderr
    step = result.json()["plan"][0]
    assert step["status"] == "applied"
    backups = list(Path(step["backup"]).parent.iterdir())
    assert backups == [Path(step["backup"])]  # the conflicted attempt's backup is gone
    import yaml

    assert yaml.safe_load(backups[0].read_text())["spec"]["subsets"][0]["name"] == "hotfix"


def test_conflict_every_time_gives_up_without_overwriting(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[])])
    writes = Writes()
    for _ in range(5):
        register_patch(fp, writes, dr(subsets=[]), returncode=1, stderr=CONFLICT)
    register_kubectl(fp, ["get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(dr(subsets=[])),
                     occurrences=5)
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 4  # environment: the object kept changing; no check failed
    doc = result.json()
    assert doc["error"]["type"] == "Conflict"
    assert "gave up after 5 attempts, nothing was overwritten" in doc["error"]["message"]
    assert "not changed: destinationrule/my-app" in result.stdout or doc["plan"] == []
    assert fp.call_count(["kubectl", "create", "-f", "-", "-o", "json"]) == 0  # no route to missing subsets


def test_already_exists_on_create_merges_into_the_new_object(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    writes = Writes()
    register_write(fp, writes, "create", returncode=1,
                   stderr='Error from server (AlreadyExists): destinationrules.networking.istio.io "my-app" '
                          'already exists\n')
    appeared = dr(subsets=[subset("other", "v9")], rv="40")
    register_kubectl(fp, ["get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"], stdout=json.dumps(appeared))
    register_patch(fp, writes, appeared)
    register_write(fp, writes, "create")
    result = mesh_cli(*SET)
    assert result.exit_code == 0, result.stderr
    assert [s["name"] for s in writes.sent[1]["spec"]["subsets"]] == ["other", "stable", "canary"]
    assert writes.sent[1]["metadata"]["resourceVersion"] == "40"


def test_forbidden_route_write_exits_4_after_the_subsets(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[]), vs(http=[])])
    writes = Writes()
    register_patch(fp, writes, dr(subsets=[]))
    register_patch(fp, writes, vs(http=[]), returncode=1, stderr=FORBIDDEN)
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 4
    doc = result.json()
    assert doc["success"] is False and doc["error"]["type"] == "Forbidden"
    assert [(s["target"], s["status"]) for s in doc["plan"]] == [("destinationrule/my-app", "applied")]
    assert "cannot update resource" in result.stderr
    # in text: what was changed before the error, and how to undo it
    register_service_read(fp, [service(), *_pods(), dr(subsets=[]), vs(http=[])])
    register_patch(fp, writes, dr(subsets=[]))
    register_patch(fp, writes, vs(http=[]), returncode=1, stderr=FORBIDDEN)
    text = mesh_cli(*SET).stdout
    assert "changed before the error: destinationrule/my-app (to undo: kubectl replace -f " in text
    assert "not changed: virtualservice/my-app (stopped by the error above; run the command again)" in text


def test_forbidden_first_write_leaves_nothing_written(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[])])
    register_patch(fp, Writes(), dr(subsets=[]), returncode=1,
                   stderr=FORBIDDEN.replace("virtualservices", "destinationrules"))
    result = mesh_cli(*SET)
    assert result.exit_code == 4
    assert "not changed: destinationrule/my-app" in result.stdout
    assert "not changed: virtualservice/my-app" in result.stdout
    assert fp.call_count(["kubectl", "create", "-f", "-", "-o", "json"]) == 0
    state = Path(os.environ["KUBECTL_MESH_STATE_DIR"])
    assert [p for p in state.rglob("*") if p.is_file()] == []  # no backup of a version not changed


def test_service_not_found_exits_1(fp, mesh_cli):
    register_service_read(fp, [*_pods()])
    result = mesh_cli(*SET)
    assert result.exit_code == 1
    assert 'service "my-app" not found in namespace "my-app"' in result.stderr


def test_istio_not_installed_is_refused_exit_3_as_for_enable(fp, mesh_cli):
    register_kubectl(fp, SERVICE_READ, returncode=1,
                     stderr='error: the server doesn\'t have a resource type "virtualservices"\n')
    register_kubectl(fp, ["get", "services,pods", "-n", NS, "-o", "json"], stdout=kube_list(service()))
    result = mesh_cli(*SET)
    assert result.exit_code == 3
    assert "error: Istio is not installed on this cluster (its CRDs are missing)" in result.stderr


# -- bad input: exit 2, no call -----------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "101"], 'invalid weight "101"'),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "-1"], 'invalid weight "-1"'),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10.5"], 'invalid weight "10.5"'),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "ten"], 'invalid weight "ten"'),
    (["canary", "My_App", "--stable", "v1", "--canary", "v2", "--weight", "10"], 'invalid service name "My_App"'),
    (["canary", "my-app", "--stable", "", "--canary", "v2", "--weight", "10"], "invalid version"),
    (["canary", "my-app", "--stable", "v1!", "--canary", "v2", "--weight", "10"], 'invalid label value "v1!"'),
    (["canary", "my-app", "--stable", "v1", "--canary", "v1", "--weight", "10"], "must be different versions"),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", "--label", "bad key"],
     'invalid label key "bad key"'),
    (["canary", "my-app", "--canary", "v2", "--weight", "10"], "Missing option '--stable'"),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2"], "Missing option '--weight'"),
    (["canary", "my-app", "extra", "--stable", "v1", "--canary", "v2", "--weight", "1"], "unexpected extra argument"),
    (["canary"], "missing SVC"),
    (["canary", "promote"], "Missing argument 'SVC'"),
    (["canary", "promote", "my-app", "--step", "0"], 'invalid step "0"'),
    (["canary", "promote", "my-app", "--step", "5", "--full"], "give one of --to N, --step N and --full"),
    (["canary", "rollback", "Bad.Name"], 'invalid service name "Bad.Name"'),
    (["canary", "status"], "Missing argument 'SVC'"),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "5", "-o", "xml"], "'xml' is not one of"),
])
def test_bad_input_exits_2_before_any_call(fp, mesh_cli, argv, needle):
    result = mesh_cli(*argv)
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(api_calls(fp)) == 0


# -- subcommands and parsing ----------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", "-n", NS, "--context", "prod"],
    ["--context", "prod", "-n", NS, "canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10"],
    ["canary", "-n", NS, "--context", "prod", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10"],
    ["canary", "--weight", "10", "my-app", "--stable", "v1", "--context", "prod", "--canary", "v2", "-n", NS],
    ["canary", "set", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", "-n", NS, "--context=prod"],
])
def test_default_action_and_global_options_anywhere(fp, mesh_cli, argv):
    register_service_read(fp, [service(), *_pods()], prefix=("--context", "prod"))
    result = mesh_cli(*argv, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["requested"]["canary"]["canary"]["weight"] == 10
    assert doc["canary"]["canary"] is None and doc["dryRun"] is True  # a dry run: the live state, no canary yet


@pytest.mark.parametrize("argv", [
    ["canary", "promote", "my-app", "-n", NS, "--context", "prod"],
    ["--context", "prod", "canary", "-n", NS, "promote", "my-app"],
    ["canary", "-o", "json", "promote", "--context", "prod", "my-app", "-n", NS],
])
def test_subcommands_and_global_options_anywhere(fp, mesh_cli, argv):
    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs()], prefix=("--context", "prod"))
    result = mesh_cli(*argv, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert (doc["canary"]["canary"]["weight"], doc["requested"]["canary"]["canary"]["weight"]) == (10, 20)


def test_promote_steps_then_full_then_nothing(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs(90, 10)])
    writes = Writes()
    register_patch(fp, writes, _guide_vs(90, 10))
    result = mesh_cli("canary", "promote", "my-app", "--step", "15", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ], ["kubectl", *patch_args(VS_RESOURCE, "my-app")]]  # the VS only
    assert writes.patches[0] == {"spec": {"http": [weighted(("stable", 75), ("canary", 25))]},
                                 "metadata": {"resourceVersion": "20"}}
    assert writes.sent[0]["spec"]["http"] == [weighted(("stable", 75), ("canary", 25))]
    assert result.json()["plan"][0]["reason"] == "canary 10 -> 25, stable 90 -> 75"

    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs(75, 25)])
    register_patch(fp, writes, _guide_vs(75, 25))
    result = mesh_cli("canary", "promote", "my-app", "--full", "-n", NS, "-o", "json")
    assert writes.sent[1]["spec"]["http"] == [weighted(("stable", 0), ("canary", 100))]
    assert [c["result"] for c in result.json()["checks"]] == ["pass", "pass"]

    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs(0, 100)])
    before = len(api_calls(fp))
    result = mesh_cli("canary", "promote", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == before + 1
    assert result.json()["plan"][0]["status"] == "unchanged"


def test_promote_caps_at_100_and_works_on_a_guide_made_service(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs(5, 95, annotate=False)])
    writes = Writes()
    register_patch(fp, writes, _guide_vs(5, 95, annotate=False))
    result = mesh_cli("canary", "promote", "my-app", "-n", NS)
    assert result.exit_code == 0, result.stdout
    assert writes.sent[0]["spec"]["http"] == [weighted(("stable", 0), ("canary", 100))]
    assert writes.sent[0]["metadata"]["annotations"] == {CANARY_ANNOTATION: ROLES}


def test_promote_refuses_when_the_canary_has_no_ready_pod(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1), _guide_dr(), _guide_vs()])
    result = mesh_cli("canary", "promote", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    assert len(api_calls(fp)) == 1


def test_promote_without_a_canary_fails(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    result = mesh_cli("canary", "promote", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 1
    check = result.json()["checks"][0]
    assert check["id"] == "canary-found" and "no VirtualService routes it" in check["message"]
    assert "kubectl mesh canary my-app --stable v1 --canary v2 --weight 10 -n my-app" in check["hint"]


def test_promote_refuses_a_route_to_an_undefined_subset(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), dr(subsets=[subset("stable", "v1")]), _guide_vs()])
    result = mesh_cli("canary", "promote", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    check = next(c for c in result.json()["checks"] if c["id"] == "canary-subset")
    assert "defined by no DestinationRule" in check["message"]


def test_rollback_changes_only_the_route_and_is_idempotent(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1), _guide_dr(), _guide_vs(0, 100)])
    writes = Writes()
    register_patch(fp, writes, _guide_vs(0, 100))
    # the canary's pods are gone: rollback must still work (the canary gets no traffic)
    result = mesh_cli("canary", "rollback", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert writes.kinds() == ["VirtualService"]
    assert writes.sent[0]["spec"]["http"] == [weighted(("stable", 100), ("canary", 0))]
    assert result.json()["plan"][0]["reason"] == "stable back to 100 (was 0), canary 0 (was 100)"
    register_service_read(fp, [service(), *version_pods("v1", 1), _guide_dr(), _guide_vs(100, 0)])
    before = len(api_calls(fp))
    again = mesh_cli("canary", "rollback", "my-app", "-n", NS, "-o", "json")
    assert again.exit_code == 0
    assert len(api_calls(fp)) == before + 1
    assert again.json()["plan"][0]["status"] == "unchanged"


def test_rollback_dry_run(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs(50, 50)])
    result = mesh_cli("canary", "rollback", "my-app", "-n", NS, "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 1
    diff = result.json()["plan"][0]["diff"]
    assert "-      weight: 50\n+      weight: 100\n" in diff


def test_status(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs()], occurrences=2)
    result = mesh_cli("canary", "status", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    doc = result.json()
    assert doc["canary"]["stable"] == {"subset": "stable", "labels": {"version": "v1"}, "weight": 90,
                                       "pods": {"ready": 2, "total": 2}}
    assert doc["canary"]["subsets"][1] == {"name": "canary", "labels": {"version": "v2"}, "percent": 10.0,
                                           "pods": {"ready": 1, "total": 1}, "weight": 10, "role": "canary"}
    assert doc["plan"] == []
    text = mesh_cli("canary", "status", "my-app", "-n", NS).stdout
    assert "canary           canary     10%      1/1  version=v2" in text
    assert text.rstrip().endswith("stable stable 90%, canary canary 10%")
    assert len(api_calls(fp)) == 2  # reads only


def test_status_fails_when_a_weighted_subset_has_no_ready_pod(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1), _guide_dr(), _guide_vs()])
    result = mesh_cli("canary", "status", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 1
    failed = [c for c in result.json()["checks"] if c["result"] == "fail"]
    assert [c["subject"] for c in failed] == ["subset/canary"]


def test_status_without_canary(fp, mesh_cli):
    register_service_read(fp, [service(), *_pods()])
    result = mesh_cli("canary", "status", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert result.json()["checks"][0]["result"] == "skip"


def test_yaml_output_is_data_only(fp, mesh_cli):
    import yaml

    register_service_read(fp, [service(), *_pods(), _guide_dr(), _guide_vs()])
    result = mesh_cli("canary", "status", "my-app", "-n", NS, "-o", "yaml")
    doc = yaml.safe_load(result.stdout)
    assert doc["success"] is True and doc["canary"]["virtualServices"] == ["my-app"]


def test_existing_objects_are_patched_in_the_version_they_were_read_in(fp, mesh_cli):
    old_rule = dr(subsets=[subset("legacy", "v0")], api="networking.istio.io/v1beta1")
    register_service_read(fp, [service(), *_pods(), old_rule, vs(http=[], rv="3")])
    writes = Writes()
    register_patch(fp, writes, old_rule)
    register_patch(fp, writes, vs(http=[], rv="3"))
    result = mesh_cli(*SET)
    assert result.exit_code == 0, result.stderr
    # a patch goes to the version the cluster serves; the body carries no apiVersion
    assert all("apiVersion" not in body for body in writes.patches)
    assert writes.sent[0]["apiVersion"] == "networking.istio.io/v1beta1"


# -- a second VirtualService for the host (istioctl analyze's IST0109) -----------------------------
def test_refuses_to_create_a_second_mesh_virtual_service_for_the_host(fp, mesh_cli):
    # a wildcard VirtualService kept to this namespace already claims the host for the mesh
    wildcard = vs("everything", hosts=("*.my-app.svc.cluster.local",), exportTo=["."])
    register_service_read(fp, [service(), *_pods(), wildcard])
    result = mesh_cli(*SET, "-o", "json")
    assert result.exit_code == 3
    assert len(fp.calls) == 1  # the read only: nothing written
    check = next(c for c in result.json()["checks"] if c["id"] == "second-virtual-service")
    assert check["result"] == "fail" and "IST0109" in check["message"]
    assert check["conflictsWith"] == ["my-app/everything"]


def test_a_gateway_only_virtual_service_for_the_host_is_no_conflict(fp, mesh_cli):
    edge = vs("edge", hosts=("*.my-app.svc.cluster.local",), gateways=["my-app-gateway"], exportTo=["."])
    register_service_read(fp, [service(), *_pods(), edge])
    result = mesh_cli(*SET, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert not any(c["id"] == "second-virtual-service" for c in result.json()["checks"])
