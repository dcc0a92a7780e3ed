"""Restarting workloads and waiting for their rollouts, as `kubectl rollout` does.

`restarts` is the plan's write for a set of restarts (one `kubectl rollout
restart` for all); `wait_into` waits for the rollouts and records
each outcome into the Report.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.apply.plan import Write
from kubectl_mesh.report import APPLIED, FAIL, FAILED, PASS, PLANNED, Check, Report, Step
from kubectl_mesh.snapshot import WorkloadRef
from kubectl_mesh.text import printable


@dataclass
class WaitResult:
    workload: WorkloadRef
    ok: bool
    message: str
    error: errors.MeshError | None = None


def restart_args(namespace: str, workloads: list[WorkloadRef]) -> list[str]:
    """One `kubectl rollout restart` for all the namespace's workloads."""
    return ["rollout", "restart", *[str(w) for w in workloads], "-n", namespace]


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_ATTEMPTS = 5
# Failures after which a restart is tried again: the server (500, 503), a 409, a lost answer.
_RETRIED = (errors.ServerError, errors.Conflict, errors.ClusterUnreachable)


class RestartFailed(errors.EnvironmentProblem):
    kind = "RestartFailed"


def restarted_at(workload: dict | None) -> str | None:
    """The template annotation `kubectl rollout restart` sets: it tells a restart made."""
    template = ((workload or {}).get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)


def _still_to_restart(runner, namespace: str, pending: list[WorkloadRef], before: dict) -> list[WorkloadRef]:
    """Those of `pending` whose restartedAt is what it was before: not restarted yet."""
    from kubectl_mesh.snapshot import CORE_RESOURCES

    listed = runner.kubectl_json("get", *[f"{CORE_RESOURCES[w.kind]}/{w.name}" for w in pending], "-n", namespace)
    items = listed.get("items") if listed.get("kind") == "List" else [listed]
    now = {((i.get("metadata") or {}).get("name"), i.get("kind")): restarted_at(i) for i in items or []}
    return [w for w in pending if now.get((w.name, w.kind)) == before.get(w)]


def restart(runner, namespace: str, workloads: list[WorkloadRef], before: dict | None = None) -> None:
    """`kubectl rollout restart` of the workloads, retried within --timeout when the
    server fails (500, 503), conflicts or loses the answer: each retry restarts only
    those whose restartedAt has not changed, so none is restarted twice. Exit 4
    (RestartFailed) when it keeps failing; its `step` lists what was restarted."""
    pending = list(workloads)
    before = before or {}
    for attempt in range(1, RESTART_ATTEMPTS + 1):
        if not pending:
            return
        try:
            runner.kubectl(*restart_args(namespace, pending), mutating=True)
            return
        except _RETRIED as exc:
            last = exc
        pending = _still_to_restart(runner, namespace, pending, before)
        if pending and attempt < RESTART_ATTEMPTS:
            time.sleep(max(0.0, min(0.2 * 2 ** attempt, runner.left() / 4)))
    failed = RestartFailed(
        f"rollout restart kept failing ({RESTART_ATTEMPTS} attempts): {last.message}; not restarted: "
        f"{', '.join(str(w) for w in pending)}; run the same command again", command=last.command)
    failed.pending = pending
    raise failed


@dataclass
class Restarts:
    """A plan's restarts: the write that makes them (one `kubectl rollout restart` for
    all) and their steps, planned until the write runs."""

    refs: list[WorkloadRef]
    steps: list[Step]
    write: Write


def restarts(runner, namespace: str, planned, snapshot=None) -> Restarts:
    """The restarts of `planned` (injection.Restart: a workload and why); `snapshot`,
    the read they were planned from, tells a restart made since."""
    refs = [r.workload for r in planned]
    before = {w: restarted_at(snapshot.get(w.kind, namespace, w.name)) for w in refs} if snapshot else {}
    steps = [
        Step("restart", str(r.workload), runner.display("kubectl", restart_args(namespace, [r.workload])),
             r.reason, PLANNED)
        for r in planned
    ]

    def run() -> list[Step]:
        if refs and not runner.dry_run:
            try:
                restart(runner, namespace, refs, before)
            except RestartFailed as exc:
                for step in steps:
                    step.status = FAILED if step.target in {str(w) for w in exc.pending} else APPLIED
                exc.step = steps
                raise
            for step in steps:
                step.status = APPLIED
        return steps

    return Restarts(refs, steps, Write(refs, ("get", "patch"), run))


def wait_into(report: Report, runner, namespace: str, restarted: Restarts, unfinished: list[WorkloadRef],
              progress) -> None:
    """Wait for the rollouts of the restarts and of those already under way
    (`unfinished`, e.g. left by an interrupted run), and record each outcome: a restart
    whose rollout did not finish fails its step; a timeout is the report's error."""
    pending = list(dict.fromkeys([*restarted.refs, *unfinished]))
    if not pending:
        return
    results = wait(runner, namespace, pending, progress)
    steps_by_target = {step.target: step for step in restarted.steps}
    for result in results:
        target = str(result.workload)
        step = steps_by_target.get(target)
        if step is None:  # a rollout we only waited for
            report.add(Check("rollout-complete", "rollouts", target, PASS if result.ok else FAIL,
                             f"{target}: rollout already under way {'finished' if result.ok else 'did not finish'}",
                             "" if result.ok else result.message))
        elif not result.ok:
            step.status = FAILED
            step.reason += f"; {result.message}"
        if not result.ok and isinstance(result.error, errors.TimedOut) and report.error is None:
            report.error = errors.TimedOut(
                f"rollout not finished within --timeout {runner.timeout:g}s: {target}; "
                f"run the same command again to keep waiting"
            )


def wait(runner, namespace: str, workloads: list[WorkloadRef], progress) -> list[WaitResult]:
    """Wait for each rollout in turn, within what is left of the command's --timeout.

    Progress lines go to `progress` (stderr). A timeout or failure of one
    rollout is recorded and the others are still waited for, each bounded by
    what is left of the deadline.
    """
    results: list[WaitResult] = []
    for workload in workloads:
        left = max(1, math.ceil(runner.left()))
        progress(f"waiting for {workload} in {namespace} (up to {left}s)")
        args = ["rollout", "status", str(workload), "-n", namespace, f"--timeout={left}s"]
        try:
            runner.kubectl_stream(*args, on_line=lambda line: progress(f"  {printable(line)}"))
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
