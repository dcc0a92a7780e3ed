"""When a rollout counts as finished, read from the workload's status as kubectl does."""

import pytest

from kubectl_mesh.apply import rollout
from kubectl_mesh.snapshot import Snapshot
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
