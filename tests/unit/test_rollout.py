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
