"""When a rollout counts as finished, read from the workload's status as kubectl does."""

import pytest

from kubectl_mesh import errors
from kubectl_mesh.apply import rollout
from kubectl_mesh.snapshot import Snapshot, WorkloadRef
from tests.helpers import deployment


def _deploy(**status):
    obj = deployment("web", replicas=2)
    obj["metadata"]["generation"] = 2
    obj["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, **status}
    return obj


@pytest.mark.parametrize("status,done", [
    ({}, True),
    ({"observedGeneration": 1}, False),          # controller has not seen the new template yet
    ({"updatedReplicas": 1}, False),             # not every replica updated
    ({"replicas": 3}, False),                    # an old replica still terminating
    ({"availableReplicas": 1}, False),           # an updated replica not available yet
])
def test_deployment(status, done):
    assert rollout.complete(_deploy(**status)) is done


def test_statefulset_and_daemonset():
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "a"}}
    assert rollout.complete(sts)
    sts["status"]["updateRevision"] = "b"
    assert not rollout.complete(sts)
    ds = {"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                     "numberAvailable": 2}}
    assert not rollout.complete(ds)
    ds["status"]["numberAvailable"] = 3
    assert rollout.complete(ds)


def test_in_progress_lists_unfinished_workloads():
    snap = Snapshot([_deploy(), {**_deploy(updatedReplicas=0), "metadata": {"name": "api", "namespace": "my-app",
                                                                            "generation": 2}}])
    assert [str(ref) for ref in rollout.in_progress(snap, "my-app")] == ["deployment/api"]


# -- restarts: retried on 5xx/409/lost answers, never twice -------------------------------
class _Runner:
    """Answers `rollout restart` from a list of outcomes and the re-read from `cluster`."""

    def __init__(self, outcomes, cluster):
        self.outcomes, self.cluster, self.restarts = list(outcomes), cluster, []

    def left(self):
        return 30.0

    def kubectl(self, *args, mutating=False, **_):
        names = [a.split("/", 1)[1] for a in args[2:-2]]
        self.restarts.append(names)
        outcome = self.outcomes.pop(0)
        for name in outcome.get("lands", names):
            self.cluster[name] = f"restarted-{len(self.restarts)}"
        if "error" in outcome:
            raise outcome["error"]
        return ""

    def kubectl_json(self, *args, **_):
        items = [{"kind": "Deployment", "metadata": {"name": a.split("/", 1)[1]},
                  "spec": {"template": {"metadata": {"annotations": {rollout.RESTARTED_AT: self.cluster[a.split("/", 1)[1]]}
                                                     if self.cluster.get(a.split("/", 1)[1]) else {}}}}}
                 for a in args[1:-2]]
        return {"kind": "List", "items": items}


WEB, API = (WorkloadRef("Deployment", "my-app", n) for n in ("web", "api"))


def test_a_503_part_way_retries_only_what_was_not_restarted(monkeypatch):
    monkeypatch.setattr(rollout.time, "sleep", lambda s: None)
    runner = _Runner([{"lands": ["web"], "error": errors.ServerError("503")}, {}], {})
    rollout.restart(runner, "my-app", [WEB, API])
    assert runner.restarts == [["web", "api"], ["api"]]


def test_a_lost_answer_of_a_restart_that_landed_is_not_restarted_again(monkeypatch):
    monkeypatch.setattr(rollout.time, "sleep", lambda s: None)
    runner = _Runner([{"error": errors.ClusterUnreachable("EOF")}], {})
    rollout.restart(runner, "my-app", [WEB, API])
    assert runner.restarts == [["web", "api"]]


def test_restarts_that_keep_failing_are_exit_4_naming_what_was_not_restarted(monkeypatch):
    monkeypatch.setattr(rollout.time, "sleep", lambda s: None)
    failing = [{"lands": [], "error": errors.ServerError("Internal error occurred")}] * rollout.RESTART_ATTEMPTS
    runner = _Runner(failing, {"web": "earlier"})
    with pytest.raises(rollout.RestartFailed) as caught:
        rollout.restart(runner, "my-app", [WEB], before={WEB: "earlier"})
    assert caught.value.exit_code == 4 and caught.value.pending == [WEB]
    assert "kept failing (5 attempts)" in caught.value.message and "not restarted: deployment/web" in caught.value.message


class _Reads:
    """A runner whose batched reads of the workloads answer from a script, one a call."""

    def __init__(self, *answers, timeout: float = 30):
        import time

        self.answers = list(answers)
        self.calls = []
        self.deadline = time.monotonic() + timeout

    def kubectl_json(self, *args, timeout=None, checks_only=False):
        self.calls.append(args)
        return {"items": self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]}


def test_wait_polls_one_batched_read_until_every_rollout_finished():
    from kubectl_mesh.snapshot import WorkloadRef

    web, api = WorkloadRef("Deployment", "my-app", "web"), WorkloadRef("Deployment", "my-app", "api")
    api_done = deployment("api", replicas=2)
    runner = _Reads([_deploy(updatedReplicas=1), api_done], [_deploy(), api_done])
    lines = []
    results = rollout.wait(runner, "my-app", [web, api], lines.append, poll=0.01)
    assert [(r.workload.name, r.ok) for r in results] == [("web", True), ("api", True)]
    assert runner.calls == [("get", "deployments.apps", "-n", "my-app")] * 2
    assert lines == ["waiting for 2 rollouts in my-app (up to 30s)", "  deployment/web: 1 of 2 updated replicas, "
                     "2 available", "  deployment/api rolled out", "  deployment/web rolled out"]


def test_wait_reports_a_passed_progress_deadline_a_missing_workload_and_a_timeout():
    from kubectl_mesh import errors
    from kubectl_mesh.snapshot import WorkloadRef

    stuck = _deploy(updatedReplicas=1, conditions=[{"type": "Progressing", "status": "False",
                                                    "reason": "ProgressDeadlineExceeded"}])
    slow = deployment("slow", replicas=2)
    slow["status"]["updatedReplicas"] = 0
    refs = [WorkloadRef("Deployment", "my-app", n) for n in ("web", "gone", "slow")]
    results = rollout.wait(_Reads([stuck, slow], timeout=0.05), "my-app", refs, lambda line: None, poll=0.01)
    assert [r.ok for r in results] == [False, False, False]
    assert results[0].message == 'deployment "web" exceeded its progress deadline'
    assert results[1].message == "deployment/gone not found in my-app"
    assert isinstance(results[2].error, errors.TimedOut)
