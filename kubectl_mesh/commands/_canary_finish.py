"""`canary finish` (and `canary run --finish`): after a full promotion, the canary becomes the new stable.

Three writes, in the order that never routes a request to a subset without
ready pods:

1. the DestinationRule's stable subset takes the canary's labels (it has no
   traffic after `promote --full`; now both subsets select the canary's pods);
2. the VirtualService sends all traffic to the stable subset (weight 100, the
   canary's destination gone) and its `kubectl-mesh.io/canary` annotation
   records the finish: `{"stable": S, "finished": C}`;
3. the canary subset is removed (kept, selecting the same pods, when another
   VirtualService still routes to it).

The next release starts clean (`canary SVC --stable v2 --canary v3` reuses the
stable subset and adds a new canary one), and `diagnose` finds no leftover
subset. Interrupted, the same command finishes what is left.
"""

from __future__ import annotations

import copy
import json

from kubectl_mesh import errors, merge, shapes, traffic
from kubectl_mesh.apply.plan import Write, execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.command import progress
from kubectl_mesh.commands._canary import check_pods, load_roles
from kubectl_mesh.mesh import format_labels, name_of
from kubectl_mesh.report import APPLIED, PASS, UNCHANGED, WARN, Check, Report, gate


def without_subset(rule: dict, name: str) -> dict:
    result = copy.deepcopy(rule)
    spec = result.get("spec") or {}
    spec["subsets"] = [s for s in spec.get("subsets") or [] if not (isinstance(s, dict) and s.get("name") == name)]
    return result


def routed_elsewhere(target, vs_name: str, subset: str) -> list[str]:
    """Other VirtualServices (gateway ones too) that still send this host to `subset`."""
    found = traffic.virtual_services_for(target.snapshot, target.fqdn, target.namespace, mesh_only=False)
    return [name_of(vs) for vs in found if name_of(vs) != vs_name and subset in traffic.routed_subsets(vs, target.fqdn)]


def apply_finish(report: Report, runner, target, force: bool) -> Report:
    """Plan, check and write the finish into `report` (also `canary run --finish`'s last step)."""
    svc = target.name
    vs = target.virtual_service
    done = traffic.finished_roles(vs) if traffic.canary_roles(vs, target.fqdn) is None else None
    if done is not None:
        return _resume(report, runner, target, done)
    found = load_roles(report, target, force)
    if found is None:
        return report
    _, roles, weights, chosen = found
    stable, canary = roles["stable"], roles["canary"]
    labels = chosen["canary"]["labels"]
    report.data["requested"] = {"canary": {
        "stable": {"subset": stable, "labels": labels, "weight": 100},
        "canary": {"subset": canary, "labels": None, "weight": 0}}}
    if labels is None:
        gate(report, False, "canary-subset", "subsets", f"subset/{canary}",
             f"canary subset {canary} is defined by no DestinationRule for {target.fqdn}: there is nothing to "
             "make the stable", f"kubectl mesh canary status {svc} -n {target.namespace}")
    else:
        if weights["canary"] != 100:
            gate(report, force, "promoted-fully", "canary", f"service/{svc}",
                 f"the canary has {weights['canary']}% of the traffic, not all of it: finishing now would move "
                 f"the stable's {weights['stable']}% to {format_labels(labels)} at once",
                 f"promote it fully first: kubectl mesh canary promote {svc} --full -n {target.namespace}; "
                 "--force finishes now")
        check_pods(report, target, "canary", chosen["canary"], 100, force)
    planned: dict[int, dict] = {}  # write index -> the object as last planned
    _data(report, target, planned)
    if report.refused:
        return report
    writer = Writer(runner, progress=progress)
    dr_name = name_of(target.rule)
    vs_name = name_of(vs)
    dr_ref = ObjectRef("DestinationRule", target.namespace, dr_name)
    vs_ref = ObjectRef("VirtualService", target.namespace, vs_name)

    def relabelled(current):
        if current is None or traffic.dr_host(current) != target.fqdn:
            raise errors.Refused(f"destinationrule/{dr_name} no longer has host {target.fqdn}; nothing written")
        result = merge.destination_rule_subsets(current, name=dr_name, namespace=target.namespace, host=svc,
                                                wanted=[{"name": stable, "labels": labels}])
        planned[0] = result
        return result

    def routed(current):
        if current is None or target.fqdn not in traffic.vs_hosts(current):
            raise errors.Refused(f"virtualservice/{vs_name} no longer routes host {target.fqdn}; nothing written")
        result = merge.virtual_service_weights(current, name=vs_name, namespace=target.namespace, host=svc,
                                               weights=[(stable, 100)])
        result["metadata"].setdefault("annotations", {})[traffic.CANARY_ANNOTATION] = json.dumps(
            {"stable": stable, "finished": canary}, separators=(",", ":"))
        planned[1] = result
        return result

    writes = [
        writer.applying(dr_ref, relabelled, target.rule, action="subsets",
                        reason=f"stable subset {stable} selects the canary's pods ({format_labels(labels)}) first"),
        writer.applying(vs_ref, routed, vs, action="route",
                        reason=f"all traffic to subset {stable}, which now selects the canary's pods"),
    ]
    writes += _removal(report, runner, target, writer, dr_ref, canary, vs_name, planned, index=2)
    execute(report, writes, runner=runner)
    _data(report, target, planned)
    return report


def _removal(report, runner, target, writer, dr_ref, canary: str, vs_name: str, planned: dict, *, index: int) -> list:
    """The last write: the canary subset goes (read again: the relabel just changed the rule),
    unless another VirtualService still routes to it."""
    others = routed_elsewhere(target, vs_name, canary)
    if others:
        report.add(Check("canary-subset-kept", "subsets", f"subset/{canary}", WARN,
                         f"subset {canary} is kept: {', '.join(f'virtualservice/{n}' for n in others)} still "
                         "routes to it (it selects the same pods as the stable subset)",
                         "route those to the stable subset, then run this command again"))
        return []

    def removed(current):
        if current is None:
            return None
        planned[index] = without_subset(current, canary)
        return planned[index]

    return [Write([dr_ref], ("get", "patch"), lambda: writer.apply(
        dr_ref, removed, writer.read(dr_ref), action="subsets",
        reason=f"remove the canary subset {canary}: no route uses it now"),
        prepare=None if runner.dry_run else writer.backups.ready)]


def _resume(report, runner, target, done: dict) -> Report:
    """The VirtualService already records the finish: only the canary subset may be left."""
    canary = done["finished"]
    planned: dict[int, dict] = {}
    if target.rule is None or traffic.subset_named(target.rule, canary) is None:
        report.add(Check("canary-finished", "canary", f"service/{target.name}", PASS,
                         f"the canary of service {target.name} is finished: subset {done['stable']} has all the "
                         "traffic and the canary subset is gone"))
        report.summary = "nothing to do"
    else:
        writer = Writer(runner, progress=progress)
        dr_ref = ObjectRef("DestinationRule", target.namespace, name_of(target.rule))
        execute(report, _removal(report, runner, target, writer, dr_ref, canary, name_of(target.virtual_service),
                                 planned, index=0), runner=runner)
    _data(report, target, planned)
    return report


def _data(report: Report, target, planned: dict[int, dict]) -> None:
    """The canary as the command leaves it: each write's object in place when its step landed."""
    landed = [planned[i] for i, step in enumerate(report.plan)
              if i in planned and step.status in (APPLIED, UNCHANGED)]
    latest = {(o["kind"], name_of(o)): o for o in landed}
    report.data["canary"] = shapes.canary(target.snapshot, target.service, written=list(latest.values()))
