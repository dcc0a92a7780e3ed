"""Restarting workloads and waiting for their rollouts, as `kubectl rollout` does."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.snapshot import WorkloadRef


@dataclass
class WaitResult:
    workload: WorkloadRef
    ok: bool
    message: str
    error: errors.MeshError | None = None


def restart_args(namespace: str, workloads: list[WorkloadRef]) -> list[str]:
    """One `kubectl rollout restart` for all the namespace's workloads."""
    return ["rollout", "restart", *[str(w) for w in workloads], "-n", namespace]


def restart(runner, namespace: str, workloads: list[WorkloadRef]) -> None:
    if workloads:
        runner.kubectl(*restart_args(namespace, workloads), mutating=True)


def wait(runner, namespace: str, workloads: list[WorkloadRef], timeout: float, progress) -> list[WaitResult]:
    """Wait for each rollout in turn, within one overall deadline.

    Progress lines go to `progress` (stderr). A timeout or failure of one
    rollout is recorded and the others are still waited for, each bounded by
    what is left of the deadline.
    """
    deadline = time.monotonic() + timeout
    results: list[WaitResult] = []
    for workload in workloads:
        left = max(1, math.ceil(deadline - time.monotonic()))
        progress(f"waiting for {workload} in {namespace} (up to {left}s)")
        args = ["rollout", "status", str(workload), "-n", namespace, f"--timeout={left}s"]
        try:
            runner.kubectl_stream(*args, on_line=lambda line: progress(f"  {line}"), timeout=left + 10)
        except errors.TimedOut as exc:
            results.append(WaitResult(workload, False, f"rollout of {workload} not finished within {left}s", exc))
            continue
        except errors.MeshError as exc:
            if isinstance(exc, errors.EnvironmentProblem):
                raise
            results.append(WaitResult(workload, False, exc.message, exc))
            continue
        results.append(WaitResult(workload, True, f"{workload} rolled out"))
    return results


def complete(workload: dict) -> bool:
    """Has the workload's last rollout finished? The conditions `kubectl rollout
    status` waits for, read from the object's status."""
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    generation = (workload.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration", 0) < generation:
        return False
    kind = workload.get("kind")
    if kind == "Deployment":
        wanted = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        return (updated >= wanted and status.get("replicas", 0) <= updated
                and status.get("availableReplicas", 0) >= updated)
    if kind == "StatefulSet":
        wanted = spec.get("replicas", 1)
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return False
        return status.get("readyReplicas", 0) >= wanted
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        return status.get("updatedNumberScheduled", 0) >= desired and status.get("numberAvailable", 0) >= desired
    return True


def in_progress(snapshot, namespace: str) -> list[WorkloadRef]:
    """Workloads of the namespace whose rollout has not finished (e.g. one an
    interrupted run started): a re-run waits for them before verifying."""
    return [
        WorkloadRef(w["kind"], namespace, w["metadata"]["name"])
        for w in snapshot.workloads(namespace)
        if not complete(w)
    ]
