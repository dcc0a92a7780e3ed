"""`canary`: the guide's traffic shifting, step 3, done in the order that avoids 503s.

    kubectl mesh canary SVC --stable v1 --canary v2 --weight 10 [--label version]
    kubectl mesh canary promote SVC [--to N | --step N | --full]
    kubectl mesh canary rollback SVC
    kubectl mesh canary finish SVC      (the canary becomes the stable; see canary_finish.py)
    kubectl mesh canary status SVC

Subsets are named `stable` and `canary` (as the guide writes them) with labels
{LABEL: VERSION}; a subset that already has exactly those labels is reused
under its own name instead of adding a duplicate. The DestinationRule's
subsets are written first, the VirtualService's weights second, so nothing
is ever routed to a subset that does not exist yet; promote and rollback
change only the VirtualService. Before any weight is given to a subset, its
labels together with the Service's selector must select a ready pod (the
guide's "503 errors during canary rollout"). Which subset is which is
recorded on the VirtualService (annotation kubectl-mesh.io/canary).
"""

from __future__ import annotations

import re

import click

from kubectl_mesh import canary_health, errors, merge, shapes, traffic, validate
from kubectl_mesh.apply.backup import Intents, Store
from kubectl_mesh.apply.plan import Write, execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.cluster_names import complete_services
from kubectl_mesh.command import DefaultAction, DefaultSubcommandGroup, mesh_command, progress
from kubectl_mesh.commands import _promote, _service, canary_finish
from kubectl_mesh.commands._canary import check_pods, load_roles, title
from kubectl_mesh.mesh import format_labels, name_of, namespace_of
from kubectl_mesh.report import APPLIED, PASS, SKIP, UNCHANGED, Check, Report, gate
from kubectl_mesh.text import command as shell

SUBCOMMANDS = ("promote", "rollback", "finish", "status", "run", "set")
DEFAULT_STEP = 10
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
EXAMPLES = (
    ("kubectl mesh canary my-app --stable v1 --canary v2 --weight 10 -n my-app", "10% of my-app's traffic to v2"),
    ("kubectl mesh canary my-app --stable v1 --canary v2 --weight 10 -n my-app --dry-run",
     "the subsets and weights it would write, as diffs"),
    ("kubectl mesh canary promote my-app --to 50 -n my-app", "then 50%"),
    ("kubectl mesh canary finish my-app -n my-app", "after --full: v2 becomes the stable, the canary subset goes"),
    ("kubectl mesh canary rollback my-app -n my-app", "or all traffic back to v1"),
)


def _validated_service(value: str) -> str:
    return validate.dns1123_label(value, what="service name")


def validated_split(svc: str, label: str, stable: str, canary: str) -> tuple[str, str]:
    """The service name and label key of a split between two versions, checked."""
    svc = _validated_service(svc)
    label = validate.label_key(label)
    for value in (stable, canary):
        if not value:
            raise errors.UsageError("invalid version \"\": --stable and --canary need a label value, e.g. v1")
        validate.label_value(value)
    if stable == canary:
        raise errors.UsageError(f'--stable and --canary are both "{stable}": they must be different versions')
    return svc, label


# -- the plan for weights ---------------------------------------------------------------------
def subset_name_for(version: str, default: str, taken: str | None) -> str:
    """The default subset name, or `<default>-<version>` when the other role already uses it."""
    if default != taken:
        return default
    tail = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-") or "v"
    return f"{default}-{tail}"[:63].rstrip("-")


def choose_subsets(rule: dict | None, label: str, stable: str, canary: str) -> dict:
    """{"stable": {"name", "labels"}, "canary": {...}}: reuse a subset whose labels are
    exactly {label: version} (its own name; `stable`/`canary` preferred), else the
    guide's names."""
    existing = traffic.subsets(rule)
    chosen: dict[str, dict] = {}
    taken = None
    for role, version in (("stable", stable), ("canary", canary)):
        labels = {label: version}
        same = [s.get("name") for s in existing if traffic.subset_labels(s) == labels and s.get("name") != taken]
        if role in same:
            name = role
        elif same:
            name = same[0]
        else:
            name = subset_name_for(version, role, taken)
        chosen[role] = {"name": name, "labels": labels}
        taken = name
    return chosen


def routed_weights(target: _service.ServiceTarget) -> dict[str, int]:
    """The largest weight each subset of the host gets in any route of any mesh VirtualService."""
    result: dict[str, int] = {}
    for vs in target.virtual_services:
        for subset, weight in traffic.routed_subsets(vs, target.fqdn).items():
            result[subset] = max(result.get(subset, 0), weight)
    return result


def check_relabels(report: Report, target, chosen: dict, force: bool) -> None:
    """Re-pointing a subset that receives traffic would move that traffic at once: refuse."""
    routed = routed_weights(target)
    for want in chosen.values():
        existing = traffic.subset_named(target.rule or {}, want["name"]) if target.rule else None
        if existing is None or traffic.subset_labels(existing) == want["labels"]:
            continue
        old = traffic.labels_text(traffic.subset_labels(existing))
        new = traffic.labels_text(want["labels"])
        weight = routed.get(want["name"], 0)
        if weight > 0:
            gate(report, force, "subset-in-use", "safety", f"subset/{want['name']}",
                 f"subset {want['name']} ({old}) receives traffic (weight {weight}); re-pointing it at {new} "
                 "would switch that traffic at once",
                 "finish or roll back the current canary first "
                 f"({shell('kubectl', 'mesh', 'canary', 'rollback', target.name)}), "
                 "or give the new version another subset; --force re-points it anyway",
                 {"subset": want["name"], "from": traffic.subset_labels(existing), "to": want["labels"]})
        else:
            report.add(Check("subset-relabel", "subsets", f"subset/{want['name']}", PASS,
                             f"subset {want['name']} receives no traffic; re-pointing it from {old} to {new}"))


def canary_data(report: Report, target, chosen: dict, weights: dict, written: list) -> None:
    """The canary as the command leaves it (the objects it wrote, if they landed, in place of
    those read) and, apart, what was requested (kubectl_mesh.shapes)."""
    landed = {s.target for s in report.plan if s.status in (APPLIED, UNCHANGED)}
    kept = [obj for obj in written if f"{obj['kind'].lower()}/{name_of(obj)}" in landed]
    report.data["canary"] = shapes.canary(target.snapshot, target.service, written=kept)
    report.data["requested"] = {"canary": shapes.requested_canary(chosen, weights)}


def check_second_virtual_service(report: Report, target, vs_name: str, force: bool) -> None:
    """Creating a VirtualService for the host must not make it the second one bound to
    the mesh gateway for that host (a wildcard host, or the host as seen from some
    namespace, counts as istioctl analyze's IST0109 counts it): which one's routes a
    sidecar uses would be undefined, and the weights this command sets may be ignored."""
    from kubectl_mesh.findings.conflicts import conflicting_with

    planned = {"kind": "VirtualService", "metadata": {"name": vs_name, "namespace": target.namespace},
               "spec": {"hosts": [target.name]}}
    others = [vs for vs in target.snapshot.of_kind("VirtualService")
              if (namespace_of(vs), name_of(vs)) != (target.namespace, vs_name)]
    clash = conflicting_with(planned, others)
    if not clash:
        return
    names = ", ".join(f"{namespace_of(vs)}/{name_of(vs)}" for vs in clash)
    gate(report, force, "second-virtual-service", "safety", f"virtualservice/{vs_name}",
         f"creating virtualservice/{vs_name} for host {target.fqdn} would make it a second VirtualService bound to "
         f"the mesh gateway for that host, with {names}: which one's routes a sidecar uses is undefined "
         "(istioctl analyze IST0109), so the canary weights could be ignored",
         f"route the host in {names} instead, or take the host out of it; --force creates {vs_name} anyway",
         {"conflictsWith": [f"{namespace_of(vs)}/{name_of(vs)}" for vs in clash]})


def vs_write(writer, target, vs_name, chosen, weights, reason, annotate=None, written: list | None = None) -> Write:
    """The write of the VirtualService's weights (and the role annotation; `annotate(vs, current)`
    adds to what is written); the object as last planned is appended to `written`."""
    roles = {role: chosen[role]["name"] for role in ("stable", "canary")}
    ref = ObjectRef("VirtualService", target.namespace, vs_name)

    def merged(current):
        if current is not None and (target.fqdn not in traffic.vs_hosts(current)
                                    or not traffic.applies_to_mesh(current)):
            raise errors.Refused(f"virtualservice/{vs_name} no longer routes host {target.fqdn}; nothing written")
        result = merge.virtual_service_weights(
            current, name=vs_name, namespace=target.namespace, host=target.name,
            weights=[(roles["stable"], weights["stable"]), (roles["canary"], weights["canary"])], roles=roles,
        )
        result = annotate(result, current) if annotate else result
        if written is not None:
            written.append(result)
        return result

    return writer.applying(ref, merged, target.virtual_service, reason=reason, action="route")


# -- the group ---------------------------------------------------------------------------------
@mesh_command("canary", group=True, cls=DefaultSubcommandGroup, invoke_without_command=True,
              usage="SVC --stable VERSION --canary VERSION --weight N | COMMAND SVC",
              lazy={"run": "kubectl_mesh.commands.canary_run"},
              context_settings={**CONTEXT, "ignore_unknown_options": True}, examples=EXAMPLES)
def command(settings):
    """Shift traffic between a stable and a canary subset by weight (the guide's step 3).

    The main form routes N% of SVC's traffic to the canary version: the
    DestinationRule's subsets are written before the VirtualService's weights,
    and a subset must select a ready pod before it gets traffic (exit 3
    otherwise; --force overrides). Then promote it step by step (or --to N),
    roll it back, or finish it: the canary becomes the new stable. `canary run`
    does the steps itself, measuring each from Prometheus.
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        raise click.UsageError("missing SVC (or one of promote, rollback, finish, status, run and SVC)", ctx)


@mesh_command("set", hidden=True, cls=DefaultAction, context_settings=CONTEXT, examples=EXAMPLES[:2])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--stable", "stable", metavar="VERSION", required=True, help="Label value of the stable pods, e.g. v1.")
@click.option("--canary", "canary", metavar="VERSION", required=True, help="Label value of the canary pods, e.g. v2.")
@click.option("--weight", metavar="N", required=True, help="Canary weight, an integer 0-100; stable gets 100-N.")
@click.option("--label", default="version", show_default=True, metavar="KEY",
              help="The pod label that tells the versions apart.")
@click.option("--force", is_flag=True, help="Proceed despite a failed safety check.")
def set_command(settings, svc, stable, canary, weight, label, force):
    """Route WEIGHT% of SVC's traffic to the canary version, the rest to stable."""
    svc, label = validated_split(svc, label, stable, canary)
    canary_weight = validate.weight(weight)
    weights = {"stable": 100 - canary_weight, "canary": canary_weight}

    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    return apply_split(Report(), runner, target, label, stable, canary, weights, force)


def apply_split(report, runner, target, label, stable, canary, weights, force, annotate=None) -> Report:
    """The DestinationRule's subsets, then the VirtualService's weights, each after its checks
    (one rule and one VirtualService for the host, names free, subsets not re-pointed under
    traffic, ready pods behind every subset that gets traffic). `annotate(vs, current)` adds
    to the VirtualService written (canary run keeps its progress there)."""
    svc = target.name
    _service.guard_single(report, target, "DestinationRule", force,
                          "Istio merges them and keeps only the first one's traffic policy")
    _service.guard_single(report, target, "VirtualService", force,
                          "Istio uses only one VirtualService per host for sidecars")
    dr_name = name_of(target.rule) if target.rule else svc
    vs_name = name_of(target.virtual_service) if target.virtual_service else svc
    if target.rule is None and _service.refuse_clash(report, target, "DestinationRule", dr_name):
        return report
    if target.virtual_service is None and _service.refuse_clash(report, target, "VirtualService", vs_name):
        return report
    if target.virtual_service is None:
        check_second_virtual_service(report, target, vs_name, force)

    chosen = choose_subsets(target.rule, label, stable, canary)
    report.title = report.title or title(target, chosen, weights)
    for role in ("stable", "canary"):
        reused = chosen[role]["name"] not in ("stable", "canary") and traffic.subset_named(
            target.rule or {}, chosen[role]["name"]) is not None
        if reused:
            report.add(Check("subset-reused", "subsets", f"subset/{chosen[role]['name']}", PASS,
                             f"{role}: reusing subset {chosen[role]['name']}, which already selects "
                             f"{format_labels(chosen[role]['labels'])}"))
    check_relabels(report, target, chosen, force)
    for role in ("stable", "canary"):
        check_pods(report, target, role, chosen[role], weights[role], force)
    written: list = []
    canary_data(report, target, chosen, weights, written)
    if report.refused:
        return report

    writer = Writer(runner, progress=progress)
    wanted = [chosen["stable"], chosen["canary"]]

    def merged_rule(current):
        if current is not None and traffic.dr_host(current) != target.fqdn:
            raise errors.Refused(f"destinationrule/{dr_name} no longer has host {target.fqdn}; nothing written")
        result = merge.destination_rule_subsets(current, name=dr_name, namespace=target.namespace,
                                                host=svc, wanted=wanted)
        written.append(result)
        return result

    dr_ref = ObjectRef("DestinationRule", target.namespace, dr_name)
    subsets = writer.applying(dr_ref, merged_rule, target.rule,
                              reason="subsets first, so that no route points at a missing subset", action="subsets")
    execute(report, [subsets, vs_write(writer, target, vs_name, chosen, weights,
                                       f"weights stable {weights['stable']} / canary {weights['canary']}", annotate,
                                       written=written)], runner=runner)
    canary_data(report, target, chosen, weights, written)
    return report


def _shift(settings, report, target, runner, chosen, new_weights, force, reason):
    """Check the subsets that get traffic, then write the VirtualService."""
    for role in ("stable", "canary"):
        if chosen[role]["labels"] is None and new_weights[role] > 0:
            gate(report, force, f"{role}-subset", "subsets", f"subset/{chosen[role]['name']}",
                 f"{role} subset {chosen[role]['name']} is defined by no DestinationRule for "
                 f"{target.fqdn}; routing to it fails with 503",
                 f"define it first: {shell('kubectl', 'mesh', 'canary', target.name)} --stable VERSION "
                 "--canary VERSION --weight N")
    for role in ("stable", "canary"):
        if chosen[role]["labels"] is not None:
            check_pods(report, target, role, chosen[role], new_weights[role], force)
    written: list = []
    canary_data(report, target, chosen, new_weights, written)
    report.title = title(target, chosen, new_weights)
    if report.refused:
        return report
    writer = Writer(runner, progress=progress)
    execute(report, [vs_write(writer, target, name_of(target.virtual_service), chosen, new_weights, reason,
                              written=written)], runner=runner)
    canary_data(report, target, chosen, new_weights, written)
    return report


@mesh_command("promote", context_settings=CONTEXT, examples=[
    ("kubectl mesh canary promote my-app --to 50 -n my-app", "canary at 50% (running it again changes nothing)"),
    ("kubectl mesh canary promote my-app -n my-app", "10 points more for the canary"),
    ("kubectl mesh canary promote my-app --full -n my-app", "all traffic to the canary"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--to", "to", metavar="N", help="Set the canary weight to N (0-100): absolute, so idempotent.")
@click.option("--step", metavar="N", help=f"Add N to the canary weight (default {DEFAULT_STEP}).")
@click.option("--full", is_flag=True, help="Send all traffic to the canary (--to 100).")
@click.option("--force", is_flag=True, help="Proceed despite a failed safety check.")
def promote(settings, svc, to, step, full, force):
    """Raise the canary's weight: to N with --to, by --step (default 10), or to 100 with --full.

    --to is what a runbook wants: run twice, it is one change (a second run
    finds the weight already there and writes nothing).
    """
    svc = _validated_service(svc)
    if sum(x is not None and x is not False for x in (to, step, full)) > 1:
        raise errors.UsageError("give one of --to N, --step N and --full")
    absolute = validate.weight(to) if to is not None else (100 if full else None)
    increment = validate.integer(step, what="step", minimum=1, maximum=100) if step is not None else DEFAULT_STEP
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    report = Report(title=f"Promote the canary of service {svc} in {target.namespace}")
    found = load_roles(report, target, force)
    if found is None:
        return report
    vs, _, weights, chosen = found
    intents = Intents(Store(runner.context, runner.kubeconfig))
    # --step is relative: after a write whose answer was lost, complete it rather than step again.
    new = None if absolute is not None else _promote.pending_target(report, intents, target, name_of(vs), weights)
    if new is None:
        canary_weight = absolute if absolute is not None else min(100, weights["canary"] + increment)
        new = {"stable": 100 - canary_weight, "canary": canary_weight}
    _shift(settings, report, target, runner, chosen, new, force,
           f"canary {weights['canary']} -> {new['canary']}, stable {weights['stable']} -> {new['stable']}")
    if not runner.dry_run:
        _promote.remember(report, intents, target, name_of(vs), weights, new)
    return report


@mesh_command("rollback", context_settings=CONTEXT, examples=[
    ("kubectl mesh canary rollback my-app -n my-app", "all traffic back to stable; the subsets stay"),
    ("kubectl mesh canary rollback my-app -n my-app --force", "even if a safety check objects (a last resort)"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--force", is_flag=True, help="Proceed despite a failed safety check.")
def rollback(settings, svc, force):
    """Send all traffic back to the stable subset (stable 100, canary 0).

    Only the VirtualService changes; the subsets stay for the next attempt.
    """
    svc = _validated_service(svc)
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    report = Report(title=f"Roll back the canary of service {svc} in {target.namespace}")
    found = load_roles(report, target, force)
    if found is None:
        return report
    _, _, weights, chosen = found
    return _shift(settings, report, target, runner, chosen, {"stable": 100, "canary": 0}, force,
                  f"stable back to 100 (was {weights['stable']}), canary 0 (was {weights['canary']})")


def _run_state(target):
    """The progress `canary run` keeps in the role annotation, if any."""
    from kubectl_mesh.analysis import schedule
    from kubectl_mesh.mesh import annotations_of

    vs = target.virtual_service
    return schedule.read_annotation(annotations_of(vs).get(traffic.CANARY_ANNOTATION))[1] if vs else None


@mesh_command("status", context_settings=CONTEXT, examples=[
    ("kubectl mesh canary status my-app -n my-app", "weights, ready pods per subset, the objects involved"),
    ("kubectl mesh canary status my-app -n my-app -o json", ".canary.canary.weight, .canary.subsets[].pods.ready"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
def status(settings, svc):
    """Weights, ready/total pods per subset, and the objects involved."""
    svc = _validated_service(svc)
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    doc = shapes.canary(target.snapshot, target.service)
    report = Report(title=f"Canary of service {svc} in {target.namespace}")
    report.data["canary"] = doc
    report.text.append(f"DestinationRules: {', '.join(doc['destinationRules']) or '(none)'}")
    report.text.append(f"VirtualServices:  {', '.join(doc['virtualServices']) or '(none)'}")
    if doc["subsets"]:
        report.text.append("")
        report.text.append(f"{'SUBSET':<16} {'ROLE':<7} {'WEIGHT':>6}  {'READY':>7}  LABELS")
        for subset in doc["subsets"]:
            weight = "-" if subset["weight"] is None else f"{subset['weight']}%"
            ready = f"{subset['pods']['ready']}/{subset['pods']['total']}"
            report.text.append(f"{subset['name']:<16} {subset['role'] or '':<7} {weight:>6}  {ready:>7}  "
                               f"{format_labels(subset['labels'])}")
    if not doc["active"]:
        report.add(Check("canary-found", "canary", f"service/{svc}", SKIP,
                         f"no canary for service {svc}"
                         + (": weights are not split between a stable and a canary subset" if doc["virtualServices"]
                            else ": no VirtualService routes it")))
    run = _run_state(target)
    if run is not None:
        doc["run"] = run.as_dict()
        report.text.append(f"Canary run:       {run.id} {run.stable} -> {run.canary}, {run.phase} at {run.position}"
                           + (f", held by {run.holder}" if run.holder else "")
                           + (f" ({run.reason})" if run.reason else ""))
    report.add(*canary_health.checks(doc))
    if doc["active"]:
        report.summary = (f"stable {doc['stable']['subset']} {doc['stable']['weight']}%, "
                          f"canary {doc['canary']['subset']} {doc['canary']['weight']}%")
    return report


for _sub in (set_command, promote, rollback, canary_finish.finish, status):
    command.add_command(_sub)
