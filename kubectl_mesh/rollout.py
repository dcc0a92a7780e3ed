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
