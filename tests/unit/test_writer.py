"""apply/writer.py: read, merge, write with the resourceVersion read; retries; backups; dry-run diffs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from kubectl_mesh import errors, merge
from kubectl_mesh.apply import merge_patch
from kubectl_mesh.apply.writer import ObjectRef, Writer, WriteStep, yaml_diff
from kubectl_mesh.report import APPLIED, FAILED, PLANNED, UNCHANGED
from kubectl_mesh.runner import Runner

REF = ObjectRef("DestinationRule", "my-app", "my-app")
GET = ("get", "destinationrules.networking.istio.io", "my-app", "-n", "my-app", "-o", "json")


class FakeRunner(Runner):
    """Answers kubectl calls from a script of (args, outcome): outcome is stdout or an exception."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.seen: list[tuple[tuple[str, ...], str | None, bool]] = []
        self.timeouts: list[float | None] = []

    def kubectl(self, *args, stdin=None, mutating=False, timeout=None):
        self.seen.append((args, stdin, mutating))
        self.timeouts.append(timeout)
        expected, outcome = self.script.pop(0)
        assert len(args) == len(expected) and all(e in (a, ANY) for a, e in zip(args, expected, strict=True)), \
            f"unexpected call {args}, expected {expected}"
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome):
            return outcome(args, stdin)
        return outcome

    def kubectl_json(self, *args, timeout=None, checks_only=False):
        out = self.kubectl(*args, "-o", "json", timeout=timeout)
        return json.loads(out) if out.strip() else {}

    def patch_body(self, index: int) -> dict:
        args = self.seen[index][0]
        return json.loads(args[args.index("-p") + 1])


def using(runner, **settings):
    """The runner with the dry-run, context and kubeconfig settings the writer takes from it."""
    for key, value in settings.items():
        setattr(runner, key, value)
    return runner


def echo(resource_version, current=None):
    """Answer a create with what was sent, a patch with `current` patched, as the API server does."""

    def answer(args, stdin):
        if stdin is not None:
            obj = json.loads(stdin)
        else:
            body = json.loads(args[args.index("-p") + 1])
            obj = merge_patch.apply_merge_patch({k: v for k, v in current.items() if k != "status"}, body)
        obj["metadata"]["resourceVersion"] = resource_version
        return json.dumps(obj)

    return answer


def rule(rv="10", subsets=None, **spec):
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "my-app", "namespace": "my-app", "resourceVersion": rv, "uid": "u1",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"host": "my-app", "subsets": subsets or [], **spec},
            "status": {"validationMessages": []}}


def add_stable(current):
    return merge.destination_rule_subsets(current, name="my-app", namespace="my-app", host="my-app",
                                          wanted=[{"name": "stable", "labels": {"version": "v1"}}])


ANY = object()
PATCH = ("patch", "destinationrules.networking.istio.io", "my-app", "-n", "my-app", "--type", "merge", "-p", ANY,
         "-o", "json")
CREATE = ("create", "-f", "-", "-o", "json")


def backups() -> list[Path]:
    return sorted(p for p in Path(os.environ["KUBECTL_MESH_STATE_DIR"]).rglob("*.yaml"))


def test_unchanged_writes_nothing():
    runner = FakeRunner([])
    current = add_stable(rule())
    step = Writer(using(runner)).apply(REF, add_stable, current, reason="subsets")
    assert step.status == UNCHANGED and step.command == "" and runner.seen == []
    assert step.reason == "subsets: already so"
    assert backups() == []


def test_status_and_server_fields_do_not_count_as_changes():
    current = add_stable(rule())
    current["status"] = {"other": True}
    step = Writer(using(FakeRunner([]))).apply(REF, lambda c: {**c, "status": {}}, current, reason="r")
    assert step.status == UNCHANGED


def test_patch_sends_only_the_change_conditional_on_the_version_read_and_backs_up_first():
    runner = FakeRunner([(PATCH, echo("11", rule()))])
    step = Writer(using(runner, context="prod")).apply(REF, add_stable, rule(), reason="subsets")
    assert step.status == APPLIED and step.action == "update" and step.attempts == 1
    (args, stdin, mutating), = runner.seen
    assert mutating is True and stdin is None
    assert runner.patch_body(0) == {"spec": {"subsets": [{"name": "stable", "labels": {"version": "v1"}}]},
                                    "metadata": {"resourceVersion": "10"}}
    assert step.command == ("kubectl --context prod patch destinationrules.networking.istio.io my-app -n my-app --type merge -p "
                            "'{\"spec\":{\"subsets\":[{\"name\":\"stable\",\"labels\":{\"version\":\"v1\"}}]},"
                            "\"metadata\":{\"resourceVersion\":\"10\"}}' -o json")
    saved, = backups()
    assert step.backup == str(saved) and "/backups/prod@unknown-server/my-app/" in str(saved)
    assert step.restore == f"kubectl --context prod replace -f {saved}"
    restored = yaml.safe_load(saved.read_text())
    assert restored["spec"]["subsets"] == [] and "resourceVersion" not in restored["metadata"]
    assert step.as_dict()["restore"] == step.restore and step.as_dict()["backup"] == step.backup


def test_create_when_absent_has_no_backup():
    runner = FakeRunner([(CREATE, echo("1"))])
    step = Writer(using(runner)).apply(REF, add_stable, None, reason="subsets", action="subsets")
    assert step.status == APPLIED and step.action == "subsets" and step.command == "kubectl create -f - -o json"
    (args, stdin, mutating), = runner.seen
    sent = json.loads(stdin)
    assert mutating is True and "resourceVersion" not in sent["metadata"] and "status" not in sent
    assert "backup" not in step.as_dict() and backups() == []


def test_dry_run_diffs_and_never_calls():
    runner = FakeRunner([])
    step = Writer(using(runner, dry_run=True)).apply(REF, add_stable, rule(), reason="subsets")
    assert step.status == PLANNED and runner.seen == [] and backups() == []
    assert step.command.startswith("kubectl patch destinationrules.networking.istio.io my-app -n my-app ")
    assert step.diff == (
        "--- a/destinationrule/my-app -n my-app\n"
        "+++ b/destinationrule/my-app -n my-app\n"
        "@@ -5,4 +5,7 @@\n"
        "   namespace: my-app\n"
        " spec:\n"
        "   host: my-app\n"
        "-  subsets: []\n"
        "+  subsets:\n"
        "+  - name: stable\n"
        "+    labels:\n"
        "+      version: v1\n"
    )


def test_conflict_rereads_remerges_and_keeps_the_concurrent_change():
    concurrent = rule("12", subsets=[{"name": "hotfix", "labels": {"version": "v1.1"}}])
    runner = FakeRunner([
        (PATCH, errors.Conflict("the object has been modified")),
        (GET, json.dumps(concurrent)),
        (PATCH, echo("13", concurrent)),
    ])
    messages = []
    step = Writer(using(runner), progress=messages.append).apply(REF, add_stable, rule(), reason="r")
    assert step.status == APPLIED and step.attempts == 2
    second = runner.patch_body(2)
    assert second["metadata"]["resourceVersion"] == "12"
    assert [s["name"] for s in second["spec"]["subsets"]] == ["hotfix", "stable"]
    assert messages == ["destinationrule/my-app changed since it was read; reading it again and merging "
                        "(attempt 1 of 5)"]
    saved, = backups()  # the first backup was of a version never changed
    assert yaml.safe_load(saved.read_text())["spec"]["subsets"][0]["name"] == "hotfix"


def test_conflict_after_which_nothing_is_left_to_do():
    runner = FakeRunner([(PATCH, errors.Conflict("modified")), (GET, json.dumps(add_stable(rule("12"))))])
    step = Writer(using(runner)).apply(REF, add_stable, rule(), reason="r")
    assert step.status == UNCHANGED and len(runner.seen) == 2


def test_gives_up_after_bounded_attempts():
    script = []
    for _ in range(3):
        script += [(PATCH, errors.Conflict("modified")), (GET, json.dumps(rule()))]
    runner = FakeRunner(script)
    with pytest.raises(errors.Conflict) as caught:
        Writer(using(runner), attempts=3).apply(REF, add_stable, rule(), reason="r")
    assert "gave up after 3 attempts, nothing was overwritten" in caught.value.message
    assert caught.value.exit_code == 4  # the environment kept changing, no check failed
    assert backups() == []


def test_already_exists_on_create_merges_into_what_appeared():
    appeared = rule("5", subsets=[{"name": "x", "labels": {"a": "b"}}])
    runner = FakeRunner([(CREATE, errors.AlreadyExists("exists")), (GET, json.dumps(appeared)),
                         (PATCH, echo("6", appeared))])
    step = Writer(using(runner)).apply(REF, add_stable, None, reason="r")
    assert step.status == APPLIED
    assert [s["name"] for s in runner.patch_body(2)["spec"]["subsets"]] == ["x", "stable"]
    assert runner.patch_body(2)["metadata"] == {"resourceVersion": "5"}


def test_deleted_meanwhile_is_created_again():
    runner = FakeRunner([(PATCH, errors.NotFound("gone")), (CREATE, echo("1"))])
    step = Writer(using(runner)).apply(REF, add_stable, rule(), reason="r")
    assert step.status == APPLIED and step.action == "create"
    assert "resourceVersion" not in json.loads(runner.seen[1][1])["metadata"]


def test_other_errors_propagate_and_drop_the_backup():
    runner = FakeRunner([(PATCH, errors.Forbidden("forbidden"))])
    with pytest.raises(errors.Forbidden):
        Writer(using(runner)).apply(REF, add_stable, rule(), reason="r")
    assert backups() == []


def test_a_write_the_server_did_not_keep_fails_the_step():
    runner = FakeRunner([(PATCH, json.dumps(rule("11")))])
    step = Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert step.status == FAILED and step.reason == "subsets: the API server did not keep the change"


def test_read_returns_none_when_absent():
    runner = FakeRunner([(GET, errors.NotFound("no"))])
    assert Writer(using(runner)).read(REF) is None


# -- patch --------------------------------------------------------------------------------------------
WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "my-app", "resourceVersion": "41"},
            "spec": {"template": {"metadata": {"annotations": {"a": "b"}}}}}
DEPLOY = ObjectRef("Deployment", "my-app", "web")
PROXY = {merge.PROXY_CPU: "1"}


def patch_args(rv):
    body = {"spec": {"template": {"metadata": {"annotations": PROXY}}}, "metadata": {"resourceVersion": rv}}
    return ("patch", "deployments.apps", "web", "-n", "my-app", "--type", "merge", "-p",
            json.dumps(body, separators=(",", ":")), "-o", "json")


def make(current):
    return merge.annotations_patch(current, PROXY)


def test_annotation_patch_is_conditional_and_verified():
    runner = FakeRunner([(patch_args("41"), json.dumps(merge.template_annotations(WORKLOAD, PROXY)))])
    step = Writer(using(runner)).patch(DEPLOY, make, WORKLOAD, reason="r")
    assert step.status == APPLIED and step.target == "deployment/web"
    assert step.restore.startswith("kubectl replace -f ")


def test_patch_conflict_rereads():
    newer = {**WORKLOAD, "metadata": {**WORKLOAD["metadata"], "resourceVersion": "42"}}
    runner = FakeRunner([
        (patch_args("41"), errors.Conflict("modified")),
        (("get", "deployments.apps", "web", "-n", "my-app", "-o", "json"), json.dumps(newer)),
        (patch_args("42"), json.dumps(merge.template_annotations(newer, PROXY))),
    ])
    step = Writer(using(runner)).patch(DEPLOY, make, WORKLOAD, reason="r")
    assert step.status == APPLIED and step.attempts == 2
    assert len(backups()) == 1


def test_patch_unchanged_and_dry_run():
    done = merge.template_annotations(WORKLOAD, PROXY)
    assert Writer(using(FakeRunner([]))).patch(DEPLOY, make, done, reason="r").status == UNCHANGED
    step = Writer(using(FakeRunner([]), dry_run=True)).patch(DEPLOY, make, WORKLOAD, reason="r")
    assert step.status == PLANNED
    assert "+        sidecar.istio.io/proxyCPU: '1'\n" in step.diff
    assert "resourceVersion" not in step.diff


def test_patch_not_kept_fails():
    runner = FakeRunner([(patch_args("41"), json.dumps(WORKLOAD))])
    assert Writer(using(runner)).patch(DEPLOY, make, WORKLOAD, reason="r").status == FAILED


def test_yaml_diff_of_a_new_object_and_object_refs():
    diff = yaml_diff(None, {"kind": "X", "metadata": {"name": "a"}}, "x/a")
    assert diff.startswith("--- /dev/null\n+++ b/x/a\n")
    assert ObjectRef.of(rule()) == REF and REF.resource == "destinationrules.networking.istio.io"
    assert ObjectRef("PeerAuthentication", "n", "d").resource == "peerauthentications.security.istio.io"
    assert isinstance(WriteStep("a", "t", "c", "r"), WriteStep)


# -- labels: the same loop ------------------------------------------------------------
NS = ObjectRef("Namespace", "", "my-app")


def _namespace(version, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "my-app", "resourceVersion": version, "labels": dict(labels or {})}}


def _enable(obj):
    from kubectl_mesh import injection

    return injection.enable_labels(obj, None, force=False)


def test_label_carries_the_version_read_and_backs_up_first():
    label = ("label", "namespace", "my-app", "istio-injection=enabled", "--overwrite", "--resource-version=7")
    runner = FakeRunner([(label, "namespace/my-app labeled\n")])
    step = Writer(using(runner)).label(NS, _enable, _namespace("7"))
    assert step.status == APPLIED and step.action == "label" and step.reason == "enable injection"
    saved, = backups()
    assert saved.parent.name == "_cluster" and step.restore.endswith(f"replace -f {saved}")


def test_label_conflict_rereads_the_namespace_and_plans_again():
    first = ("label", "namespace", "my-app", "istio-injection=enabled", "--overwrite", "--resource-version=7")
    second = first[:-1] + ("--resource-version=9",)
    runner = FakeRunner([
        (first, errors.Conflict("the object has been modified")),
        (("get", "namespaces", "my-app", "-o", "json"), json.dumps(_namespace("9", {"team": "x"}))),
        (second, "namespace/my-app labeled\n"),
    ])
    step = Writer(using(runner)).label(NS, _enable, _namespace("7"))
    assert step.status == APPLIED and step.attempts == 2
    assert len(backups()) == 1  # the first backup was of a version never changed


def test_label_already_so_writes_nothing():
    step = Writer(using(FakeRunner([]))).label(NS, _enable, _namespace("7", {"istio-injection": "enabled"}))
    assert step.status == UNCHANGED and step.command == "" and step.reason == "labels already as wanted"


# -- a write whose answer is lost: read again, say what is there ---------------------------
def test_a_timed_out_write_that_landed_is_reported_applied_and_keeps_its_backup():
    runner = FakeRunner([(PATCH, errors.TimedOut("timed out after 3s: kubectl patch ...")),
                         (GET, json.dumps(add_stable(rule("11"))))])
    step = Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert step.status == APPLIED and "its answer was lost" in step.reason and "read again, it is applied" in step.reason
    saved, = backups()
    assert step.backup == str(saved)


def test_a_timed_out_write_not_there_yet_is_not_applied_uncertain_and_keeps_its_backup():
    runner = FakeRunner([(PATCH, errors.TimedOut("timed out after 3s: kubectl patch ...")), (GET, json.dumps(rule()))])
    with pytest.raises(errors.TimedOut) as caught:
        Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    step = caught.value.step
    assert step.status == FAILED and step.uncertain and step.as_dict()["outcome"] == "unknown"
    assert "not applied when read again" in step.reason and "may still land" in step.reason
    assert len(backups()) == 1 and step.restore.endswith(str(backups()[0]))


def test_a_write_that_cannot_be_read_again_is_unknown_and_keeps_its_backup():
    runner = FakeRunner([(PATCH, errors.ClusterUnreachable("Unable to connect to the server: EOF")),
                         (GET, errors.ClusterUnreachable("Unable to connect to the server: EOF"))])
    with pytest.raises(errors.ClusterUnreachable) as caught:
        Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert caught.value.step.uncertain and "outcome unknown" in caught.value.step.reason
    assert len(backups()) == 1


def test_a_dropped_write_that_did_not_land_is_tried_again_with_one_backup():
    runner = FakeRunner([(PATCH, errors.ClusterUnreachable("Unable to connect to the server: EOF")),
                         (GET, json.dumps(rule())),
                         (PATCH, echo("11", rule()))])
    step = Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert step.status == APPLIED and step.attempts == 2
    assert len(backups()) == 1


def test_a_refused_write_leaves_no_backup():
    runner = FakeRunner([(PATCH, errors.Forbidden("forbidden"))])
    with pytest.raises(errors.Forbidden):
        Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert backups() == []


def test_a_write_gets_what_is_left_but_a_reserve_for_reading_again():
    runner = FakeRunner([(PATCH, echo("11", rule()))])
    runner.deadline = __import__("time").monotonic() + 40
    Writer(using(runner)).apply(REF, add_stable, rule(), reason="subsets")
    assert runner.timeouts[0] == pytest.approx(35, abs=1)
