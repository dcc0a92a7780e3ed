"""Restarting workloads and waiting for their rollouts, as `kubectl rollout` does.

`restarts` is the plan's write for a set of restarts; `wait_into` waits for the
rollouts and records each outcome into the Report.

kubectl's client-side rate limiter throttles `kubectl rollout restart` once it
names more than a few workloads (a GET and a PATCH each: measured against the
test API server, 4 names take 0.2-0.3 s, 8 take 1.4 s, 20 take 6 s). So every
workload of a kind is restarted with the list form (`rollout restart deployment
-n NS`, one LIST, unthrottled), and otherwise the names go a few to a call, the
calls run side by side. The wait is one loop over one batched read of the
workloads, not one `kubectl rollout status` after another.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
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


# Names in one `kubectl rollout restart` (where kubectl's own throttling starts: above).
NAMES_PER_CALL = 4
# `kubectl rollout restart` calls run at once (each its own kubectl and rate limiter).
CONCURRENT_CALLS = 4
# The resource each workload kind is read and listed as.
RESOURCES = {"Deployment": "deployments.apps", "StatefulSet": "statefulsets.apps", "DaemonSet": "daemonsets.apps"}
POLL_SECONDS = 0.5


def restart_args(namespace: str, workloads: list[WorkloadRef]) -> list[str]:
    """`kubectl rollout restart` of these workloads of the namespace."""
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


def restart_calls(namespace: str, workloads: list[WorkloadRef],
                  every: dict[str, set[str]] | None = None) -> list[tuple[list[str], list[WorkloadRef]]]:
    """(kubectl arguments, the workloads they restart) for each call: the list form for a
    kind whose every workload in the namespace (`every`: kind -> names) is restarted, else
    at most NAMES_PER_CALL names a call."""
    by_kind: dict[str, list[WorkloadRef]] = {}
    for ref in dict.fromkeys(workloads):
        by_kind.setdefault(ref.kind, []).append(ref)
    calls = []
    for kind, refs in by_kind.items():
        if (len(refs) > NAMES_PER_CALL and kind in RESOURCES and every is not None
                and every.get(kind) == {r.name for r in refs}):
            calls.append((["rollout", "restart", kind.lower(), "-n", namespace], refs))
            continue
        for start in range(0, len(refs), NAMES_PER_CALL):
            chunk = refs[start:start + NAMES_PER_CALL]
            calls.append((restart_args(namespace, chunk), chunk))
    return calls


def _restart_call(runner, namespace: str, args: list[str], refs: list[WorkloadRef], before: dict) -> None:
    """One `kubectl rollout restart`, retried within --timeout when the server fails
    (500, 503), conflicts or loses the answer: each retry names only those of `refs`
    whose restartedAt has not changed, so none is restarted twice. RestartFailed
    (exit 4), carrying the workloads not restarted, when it keeps failing."""
    pending = list(refs)
    for attempt in range(1, RESTART_ATTEMPTS + 1):
        try:
            runner.kubectl(*args, mutating=True)
            return
        except _RETRIED as exc:
            last = exc
        pending = _still_to_restart(runner, namespace, pending, before)
        if not pending:
            return
        args = restart_args(namespace, pending)
        if attempt < RESTART_ATTEMPTS:
            time.sleep(max(0.0, min(0.2 * 2 ** attempt, runner.left() / 4)))
    raise _gave_up(last, pending)


def _gave_up(last: errors.MeshError, pending: list[WorkloadRef]) -> RestartFailed:
    failed = RestartFailed(
        f"rollout restart kept failing ({RESTART_ATTEMPTS} attempts): {last.message}; not restarted: "
        f"{', '.join(str(w) for w in pending)}; run the same command again", command=last.command)
    failed.last, failed.pending = last, pending
    return failed


def restart(runner, namespace: str, workloads: list[WorkloadRef], every: dict[str, set[str]] | None = None,
            before: dict | None = None, on_done=None) -> None:
    """Restart the workloads (see restart_calls), the calls side by side, each retried
    (see _restart_call). `on_done(refs)` is told of each call that succeeded; once all
    ended, a failure is raised: RestartFailed listing every workload not restarted, or
    the first other error."""
    calls = restart_calls(namespace, workloads, every)
    before = before or {}

    def one(call):
        args, refs = call
        _restart_call(runner, namespace, args, refs, before)
        if on_done is not None:
            on_done(refs)

    if not calls:
        return
    if len(calls) == 1:
        one(calls[0])
        return
    with ThreadPoolExecutor(max_workers=min(CONCURRENT_CALLS, len(calls))) as pool:
        futures = [pool.submit(one, call) for call in calls]
    seen = [f.exception() for f in futures if f.exception() is not None]
    other = [e for e in seen if not isinstance(e, RestartFailed)]
    if other:
        raise other[0]
    if seen:
        raise _gave_up(seen[0].last, [w for e in seen for w in e.pending])


@dataclass
class Restarts:
    """A plan's restarts: the write that makes them (one `kubectl rollout restart` for
    all) and their steps, planned until the write runs."""

    refs: list[WorkloadRef]
    steps: list[Step]
    write: Write


def restarts(runner, namespace: str, planned, snapshot=None) -> Restarts:
    """The restarts of `planned` (injection.Restart: a workload and why). With the
    `snapshot` the namespace was read in, a kind all of whose workloads are restarted
    is restarted with the list form, and a restart made since it was read is told."""
    refs = [r.workload for r in planned]
    before = {w: restarted_at(snapshot.get(w.kind, namespace, w.name)) for w in refs} if snapshot else {}
    steps = [
        Step("restart", str(r.workload), runner.display("kubectl", restart_args(namespace, [r.workload])),
             r.reason, PLANNED)
        for r in planned
    ]
    every = None
    if snapshot is not None:
        every = {kind: {(w.get("metadata") or {}).get("name") for w in snapshot.of_kind(kind, namespace)}
                 for kind in RESOURCES}
    by_target = {step.target: step for step in steps}

    def applied(done: list[WorkloadRef]) -> None:
        for ref in done:
            by_target[str(ref)].status = APPLIED

    def run() -> list[Step]:
        if refs and not runner.dry_run:
            try:
                restart(runner, namespace, refs, every, before, on_done=applied)
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


def wait(runner, namespace: str, workloads: list[WorkloadRef], progress,
         poll: float | None = None) -> list[WaitResult]:
    """Wait for the rollouts, all at once, within what is left of the command's
    --timeout (runner.deadline): one batched read
    of the namespace's workloads of those kinds, again every `poll` seconds, until each
    has finished (the conditions `kubectl rollout status` waits for), failed (its
    progress deadline exceeded) or the deadline passed.

    Progress lines go to `progress` (stderr). A workload that failed or timed out is
    recorded and the others are still waited for; an environment problem (the
    cluster unreachable, forbidden) is raised.
    """
    poll = POLL_SECONDS if poll is None else poll
    deadline = runner.deadline
    timeout = max(1, math.ceil(deadline - time.monotonic()))
    pending = list(dict.fromkeys(workloads))
    results: dict[WorkloadRef, WaitResult] = {}
    resources = ",".join(sorted({RESOURCES.get(w.kind, w.kind.lower()) for w in pending}))
    what = str(pending[0]) if len(pending) == 1 else f"{len(pending)} rollouts"
    progress(f"waiting for {what} in {namespace} (up to {timeout}s)")
    shown: dict[WorkloadRef, str] = {}
    while pending:
        try:
            document = runner.kubectl_json("get", resources, "-n", namespace, checks_only=True)
        except errors.TimedOut as exc:
            for ref in pending:
                results[ref] = WaitResult(ref, False, f"rollout of {ref} not finished within {timeout:g}s", exc)
            break
        found = {(o.get("kind"), (o.get("metadata") or {}).get("name")): o for o in document.get("items") or []}
        for ref in list(pending):
            obj = found.get((ref.kind, ref.name))
            if obj is None:
                results[ref] = WaitResult(ref, False, f"{ref} not found in {namespace}",
                                          errors.NotFound(f"{ref} not found"))
            elif complete(obj):
                results[ref] = WaitResult(ref, True, f"{ref} rolled out")
                progress(f"  {ref} rolled out")
            elif deadline_exceeded(obj):
                message = f'{ref.kind.lower()} "{ref.name}" exceeded its progress deadline'
                results[ref] = WaitResult(ref, False, message, errors.ToolFailed(message))
            else:
                line = status_line(obj)
                if shown.get(ref) != line:
                    shown[ref] = line
                    progress(f"  {ref}: {printable(line)}")
                continue
            pending.remove(ref)
        if not pending:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            for ref in pending:
                results[ref] = WaitResult(ref, False, f"rollout of {ref} not finished within {timeout:g}s",
                                          errors.TimedOut(f"rollout of {ref} not finished"))
            break
        time.sleep(min(poll, left))
    return [results[ref] for ref in dict.fromkeys(workloads)]


def deadline_exceeded(workload: dict) -> bool:
    """A Deployment whose rollout stopped progressing (what makes `rollout status` fail)."""
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return True
    return False


def status_line(workload: dict) -> str:
    """Where a rollout stands, as `kubectl rollout status` words it."""
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    if workload.get("kind") == "DaemonSet":
        return (f"{status.get('updatedNumberScheduled', 0)} of {status.get('desiredNumberScheduled', 0)} "
                "updated pods are available")
    wanted = spec.get("replicas", 1)
    return (f"{status.get('updatedReplicas', 0)} of {wanted} updated replicas, "
            f"{status.get('availableReplicas', status.get('readyReplicas', 0))} available")


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
