"""Writing a namespace's injection labels: conditional, retried on conflict, backed up."""

from __future__ import annotations

from kubectl_mesh import backup, errors
from kubectl_mesh.report import APPLIED, PLANNED, UNCHANGED, Step

MAX_RETRIES = 3


def label_step(runner, namespace_obj: dict, plan_change, *, context: str | None) -> tuple[Step, dict]:
    """Apply `plan_change(namespace_obj)` as one `kubectl label` carrying the
    resourceVersion read; on a conflict re-read and re-plan.

    Returns the step and the namespace as it now is (or would be, dry run).
    """
    name = namespace_obj["metadata"]["name"]
    current = namespace_obj
    for attempt in range(MAX_RETRIES + 1):
        change = plan_change(current)
        version = (current.get("metadata") or {}).get("resourceVersion")
        args = change.kubectl_args(name, version)
        step = Step("label", f"namespace/{name}", runner.display("kubectl", args),
                    "; ".join(change.reasons) or "labels already as wanted")
        if change.empty:
            step.status = UNCHANGED
            step.command = ""
            return step, current
        if runner.dry_run:
            step.status = PLANNED
            return step, change.applied_to(current)
        saved = backup.save(current, context)
        try:
            runner.kubectl(*args, mutating=True)
        except errors.Conflict:
            if attempt == MAX_RETRIES:
                raise
            current = runner.kubectl_json("get", "namespace", name)
            continue
        step.status = APPLIED
        step.restore = backup.restore_command(saved, runner.context, runner.kubeconfig)
        return step, change.applied_to(current)
    raise AssertionError("unreachable")  # pragma: no cover
