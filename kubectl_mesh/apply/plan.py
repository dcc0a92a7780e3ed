"""A command's writes as data, and the one place their outcome goes into the Report.

A command plans its writes from what it read (a list of `Write`: the objects
each changes and the API verbs it needs), then hands them to `execute`, which
runs them in order and records what happened: each write's steps in the
plan; at the first error, the error (its exit code becomes the command's) and
a note for every write not made; at the first step that did not land, a note
for those after it; after an error, what was changed and how to undo it.
Because the list is known before the first write, a permission check (or a
report of what would be written) can run over it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.report import APPLIED, FAIL, FAILED, Check, Report, Step


@dataclass
class Write:
    """One write of the plan: `run()` makes it (or, under --dry-run, plans it) and
    returns its steps."""

    targets: Sequence  # ObjectRef or WorkloadRef: what it changes (str() or .target names it)
    verbs: tuple[str, ...]  # the API verbs it needs on them, e.g. ("get", "patch")
    run: Callable[[], Step | list[Step]]
    # Checked for every write before the first runs (e.g. that backups can be kept).
    prepare: Callable[[], None] | None = None

    @property
    def names(self) -> list[str]:
        return [getattr(t, "target", None) or str(t) for t in self.targets]


def execute(report: Report, writes: Sequence[Write], *, runner=None) -> bool:
    """Run the writes in order into `report`; True when every one landed.

    With `runner`, first ask the API server whether every write is allowed (one batch of
    SelfSubjectAccessReviews): when one is not, nothing is written, every missing permission
    is listed as a failed check, and the error (exit 4) says so. Then every write's
    `prepare` (e.g. that backups can be kept) is checked before the first runs."""
    if runner is not None and not permitted(report, runner, writes):
        return False
    try:
        for check in dict.fromkeys(w.prepare for w in writes if w.prepare is not None):
            check()
    except errors.MeshError as exc:
        report.error = exc
        _not_changed(report, writes, "nothing was written")
        return False
    for index, write in enumerate(writes):
        try:
            done = write.run()
        except errors.MeshError as exc:
            report.error = exc
            if exc.step is not None:  # the write's own steps say what became of it
                report.plan.extend(exc.step if isinstance(exc.step, list) else [exc.step])
                index += 1
            _not_changed(report, writes[index:], "stopped by the error above; run the command again")
            restore_notes(report)
            return False
        steps = done if isinstance(done, list) else [done]
        report.plan.extend(steps)
        failed = [s.target for s in steps if s.status == FAILED]
        if failed:
            for later in writes[index + 1:]:
                for name in later.names:
                    report.notes.append(f"not changed: {name} ({', '.join(failed)} did not land)")
            return False
    return True


def _not_changed(report: Report, writes: Sequence[Write], why: str) -> None:
    for write in writes:
        for name in write.names:
            report.notes.append(f"not changed: {name} ({why})")


def restore_notes(report: Report) -> None:
    """The restore commands are printed under their steps (Step.restore); a failed run
    also says which objects it did change, so that they can be put back."""
    if report.error is None:
        return
    for step in report.plan:
        if step.restore and step.status == APPLIED:
            report.notes.append(f"changed before the error: {step.target} (to undo: {step.restore})")
        elif step.restore and getattr(step, "uncertain", False):
            report.notes.append(f"may be changed: {step.target} (its backup is kept; to undo if it was: "
                                f"{step.restore})")


def permitted(report: Report, runner, writes: Sequence[Write]) -> bool:
    from kubectl_mesh.apply.permissions import missing

    lacking = missing(runner, writes)
    if not lacking:
        return True
    for denied in lacking:
        report.add(Check("permission", "permissions", denied.resource + (f"/{denied.name}" if denied.name else ""),
                         FAIL, f"not allowed: {denied.permission}",
                         f"ask your platform team for: {denied.permission}", data=denied.as_dict()))
    needed = "; ".join(d.permission for d in lacking)
    report.error = errors.Forbidden(f"missing permission{'s' if len(lacking) != 1 else ''} for this change: "
                                    f"{needed}; nothing was changed")
    for write in writes:
        for name in write.names:
            report.notes.append(f"not changed: {name} (missing permissions)")
    return False
