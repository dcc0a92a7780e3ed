"""What `enable` and `disable` write: the namespace's injection labels, then one
restart of the workloads that need it, then the wait for their rollouts."""

from __future__ import annotations

import shlex

from kubectl_mesh import errors
from kubectl_mesh.apply import rollout
from kubectl_mesh.apply.plan import execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.report import Report, dry_run_summary


def relabel_and_restart(report: Report, runner, snapshot, ns_obj: dict, plan_labels, planned_restarts, *,
                        wait: bool, progress) -> rollout.Restarts | None:
    """Label (`plan_labels(namespace)`: an injection.LabelChange), restart, wait.

    Returns the restarts when the writes landed and this is no dry run (the caller
    then verifies); None when there is nothing more to do (dry run: the summary
    says so; a write failed: the report says which and how to undo what was done;
    --timeout ran out while waiting).
    """
    namespace = ns_obj["metadata"]["name"]
    writer = Writer(runner, progress=progress)
    ref = ObjectRef("Namespace", "", namespace)
    restarts = rollout.restarts(runner, namespace, planned_restarts, snapshot)
    try:
        change = plan_labels(ns_obj)
    except errors.MeshError:
        change = None  # refused: the write reports it
    # Labels already as wanted (set by someone else): the namespace is not written, so the user
    # needs no right on it to restart and verify their own workloads.
    label_verbs = ("get", "patch") if change is None or not change.empty else ()
    landed = execute(report, [writer.labelling(ref, plan_labels, ns_obj, verbs=label_verbs), restarts.write],
                     runner=runner)
    if not landed and change is not None and any(
            c.id == "permission" and c.data.get("resource") == "namespaces" for c in report.checks):
        command = shlex.join(["kubectl", *change.kubectl_args(namespace, None)])
        report.notes.append(f"a namespace admin can change the label for you: {command}  "
                            "(then run this command again: it restarts and verifies what you may change)")
    if runner.dry_run:
        report.summary = dry_run_summary(report.plan)
        return None
    if not landed:
        return None
    if wait:
        rollout.wait_into(report, runner, namespace, restarts, rollout.in_progress(snapshot, namespace), progress)
    if report.error is not None:  # --timeout ran out while waiting: nothing left to verify with
        report.notes.append("not verified: run the same command again to keep waiting and verify")
        return None
    return restarts
