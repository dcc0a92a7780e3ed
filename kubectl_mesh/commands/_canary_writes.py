"""What `canary run` reads and writes on the cluster, through the canary commands' machinery
(`canary.apply_split`: subsets before weights, ready pods, conditional writes), with the run's
state carried in the same write as the weights."""

from __future__ import annotations

from kubectl_mesh import errors, traffic
from kubectl_mesh.analysis import schedule
from kubectl_mesh.commands import _service, canary
from kubectl_mesh.mesh import annotations_of
from kubectl_mesh.report import FAILED, Report

validated = canary.validated_split


def roles_for(target, label: str, stable: str, canary_version: str) -> dict:
    """{"stable": {"name", "labels"}, "canary": {...}}: the subsets the split uses."""
    return canary.choose_subsets(target.rule, label, stable, canary_version)


def workloads(target, chosen: dict) -> dict[str, list[str]]:
    """The workload names (as Istio's telemetry names them) behind each side's pods."""
    result = {}
    for role in ("stable", "canary"):
        pods = traffic.subset_pods(target.snapshot, target.service, chosen[role]["labels"])
        names = {ref.name for ref in (target.snapshot.workload_of(p) for p in pods) if ref is not None}
        result[role] = sorted(names)
    return result


def stored_run(target) -> schedule.RunState | None:
    vs = target.virtual_service
    if vs is None:
        return None
    return schedule.read_annotation(annotations_of(vs).get(traffic.CANARY_ANNOTATION))[1]


def live_weights(target) -> dict:
    """The weights the VirtualService gives the two roles now ({} when there is no split)."""
    vs = target.virtual_service
    roles = traffic.canary_roles(vs, target.fqdn) if vs else None
    index = traffic.catch_all_index(vs) if vs else None
    if not roles or index is None:
        return {}
    weights = traffic.route_weights(vs["spec"]["http"][index], target.fqdn, target.namespace)
    return {role: weights.get(roles[role], 0) for role in ("stable", "canary")}


def outside_change(target, state: schedule.RunState, holder: str, weight: int) -> str | None:
    """Why the canary is no longer this run's to drive (someone else wrote it), or None."""
    stored = stored_run(target)
    if stored is None or stored.id != state.id:
        return "its kubectl-mesh.io/canary annotation no longer records this run (a manual canary command, or GitOps?)"
    if stored.holder != holder:
        return f"run {stored.id} is now held by {stored.holder or 'nobody'}"
    live = live_weights(target).get("canary")
    if live != weight:
        return f"the canary's weight is {live}%, not the {weight}% this run set (changed by hand, or by GitOps?)"
    return None


def _annotator(chosen: dict, state: schedule.RunState, me: str, *, check: bool = True):
    roles = {role: chosen[role]["name"] for role in ("stable", "canary")}

    def annotate(vs: dict, current: dict | None) -> dict:
        if check and current is not None:
            # As read for this attempt (again after a conflict): another runner may hold it now.
            live = schedule.read_annotation(annotations_of(current).get(traffic.CANARY_ANNOTATION))[1]
            if live is not None and live.holder not in ("", me) and live.held_by_other(state.renewed):
                raise errors.Refused(f"another canary run ({live.id}, held by {live.holder}) has taken "
                                     f"virtualservice/{(vs.get('metadata') or {}).get('name')}; nothing written")
        annotations = vs.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[traffic.CANARY_ANNOTATION] = schedule.annotation_with(
            annotations.get(traffic.CANARY_ANNOTATION), roles, state)
        return vs

    return annotate


def set_weight(report: Report, settings, runner, target, label: str, plan: schedule.Plan, weight: int,
               state: schedule.RunState, me: str, force: bool, *, first: bool) -> bool:
    """Split the traffic canary `weight` / stable the rest, recording `state`; False when refused or failed
    (the reasons are in `report`)."""
    scratch = Report(title=report.title)
    chosen = roles_for(target, label, plan.stable, plan.canary)
    canary.apply_split(scratch, runner, target, label, plan.stable, plan.canary,
                       {"stable": 100 - weight, "canary": weight}, force,
                       annotate=_annotator(chosen, state, me, check=not (first and force)))
    return _merge(report, scratch, checks=first or not _ok(scratch))


def record(report: Report, settings, runner, target, label: str, plan: schedule.Plan,
           state: schedule.RunState, me: str) -> bool:
    """Write the run's state only (weights as they are)."""
    weights = live_weights(target)
    scratch = Report(title=report.title)
    chosen = roles_for(target, label, plan.stable, plan.canary)
    canary.apply_split(scratch, runner, target, label, plan.stable, plan.canary,
                       {"stable": weights.get("stable", 100), "canary": weights.get("canary", 0)}, True,
                       annotate=_annotator(chosen, state, me))
    return _merge(report, scratch, checks=not _ok(scratch),
                  reason=f"the run's state: {state.phase} at {state.position}")


def roll_back(report: Report, settings, runner, target, label: str, plan: schedule.Plan,
              state: schedule.RunState, me: str) -> bool:
    """Stable 100, canary 0, recording `state`. Forced: sending traffic back to stable is never refused."""
    scratch = Report(title=report.title)
    chosen = roles_for(target, label, plan.stable, plan.canary)
    canary.apply_split(scratch, runner, target, label, plan.stable, plan.canary,
                       {"stable": 100, "canary": 0}, True, annotate=_annotator(chosen, state, me))
    return _merge(report, scratch, checks=not _ok(scratch))


def reload(settings, runner, target):
    """The service's objects read again (one batched read): pods' readiness and the live VirtualService."""
    return _service.load(settings, runner, target.name)


def _ok(scratch: Report) -> bool:
    return not scratch.refused and scratch.error is None and not any(s.status == FAILED for s in scratch.plan)


def _merge(report: Report, scratch: Report, *, checks: bool, reason: str = "") -> bool:
    steps = [s for s in scratch.plan if s.status != "unchanged" or s.action != "subsets"]
    for step in steps:
        if reason and step.action == "route":
            step.reason = reason
    report.plan.extend(steps)
    if checks:
        report.add(*scratch.checks)
    report.notes.extend(scratch.notes)
    if scratch.refused:
        report.refused = True
    if scratch.error is not None:
        report.error = scratch.error
    if "canary" in scratch.data:
        report.data["canary"] = scratch.data["canary"]
    return _ok(scratch)
