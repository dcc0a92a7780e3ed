"""`mtls`: the guide's step 2, the namespace's mTLS mode, with its safety checks.

    kubectl mesh mtls [NAMESPACE] strict|permissive|status

Writes the namespace-wide PeerAuthentication (no selector): the existing one,
whatever its name, or a new one named `default`; never a second one, which
Istio would ignore in favour of the oldest. Before STRICT every pod of the
namespace must have a sidecar (the guide's "connection refused after
enabling strict mTLS"), otherwise the command refuses and names the pods
and their workloads; it also warns about workloads without sidecars in other
namespaces, which could be clients. From DISABLE it refuses to go straight to
STRICT (PERMISSIVE first, so clients can move to mTLS); from STRICT to
PERMISSIVE it says what that weakens. `--force` overrides a refusal.
"""

from __future__ import annotations

import click

from kubectl_mesh import english, errors, inventory, merge, mtls, shapes, validate
from kubectl_mesh.access import skipped
from kubectl_mesh.apply.plan import execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.fixes import opt_out_hint
from kubectl_mesh.mesh import format_labels, name_of
from kubectl_mesh.report import APPLIED, PASS, UNCHANGED, WARN, Check, Report, gate
from kubectl_mesh.snapshot import DEFAULT_KINDS, read_cluster
from kubectl_mesh.text import command as shell

MODES = ("strict", "permissive", "status")
KINDS = DEFAULT_KINDS  # the same batched read as verify and enable
DEFAULT_NAME = "default"
LISTED = 10  # names shown in a message before "and N more"


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def parse_arguments(ns: str | None, mode: str | None) -> tuple[str | None, str]:
    """`mtls strict` (namespace from -n or the context) or `mtls NS strict`."""
    if mode is None:
        if ns is None:
            raise errors.UsageError("missing mode: give strict, permissive or status")
        ns, mode = None, ns
    if mode.lower() not in MODES:
        raise errors.UsageError(f'invalid mode "{mode}": choose strict, permissive or status')
    if ns is not None:
        validate.namespace(ns)
    return ns, mode.lower()


def _read(runner, namespace: str, everywhere: bool):
    """One batched read: all namespaces when other namespaces' clients matter."""
    snapshot, complete = None, everywhere
    if everywhere:
        try:
            snapshot = read_cluster(runner, namespace=None, kinds=KINDS)
        except errors.Forbidden:
            complete = False
    if snapshot is None:
        snapshot = read_cluster(runner, namespace=namespace, kinds=KINDS)
    if snapshot.istio_crds is False:
        raise errors.IstioMissing("there is no PeerAuthentication to set mTLS with")
    snapshot.require_namespace(namespace)
    return snapshot, complete


def policy_name(snapshot, namespace: str) -> str:
    """A name for a new namespace-wide policy that no workload policy already uses."""
    taken = {name_of(p) for p in snapshot.of_kind("PeerAuthentication", namespace)}
    return DEFAULT_NAME if DEFAULT_NAME not in taken else "namespace-mtls"


# -- checks before STRICT -------------------------------------------------------------------
def check_sidecars(report: Report, snapshot, namespace: str, force: bool) -> list[dict]:
    states = inventory.namespace_pods(snapshot, namespace)
    lacking = [s for s in states if not s.has_sidecar]
    if not states:
        report.add(Check("sidecars", "sidecars", f"namespace/{namespace}", PASS,
                         f"namespace {namespace} has no pods"))
        return []
    if not lacking:
        report.add(Check("sidecars", "sidecars", f"namespace/{namespace}", PASS,
                         f"{'the one pod' if len(states) == 1 else f'all {len(states)} pods'} in {namespace} "
                         f"{english.agree(len(states), 'has')} a sidecar"))
        return []
    groups = inventory.by_workload(lacking)
    described = [f"{g.ref} ({', '.join(p.name for p in g.pods)})" for g in groups]
    opted = [g for g in groups if all(p.opted_out for p in g.pods)]
    restart = [g for g in groups if g not in opted]
    hints = []
    if restart:
        hints.append(f"enable injection in {namespace} and restart the workloads: "
                     + shell("kubectl", "mesh", "enable", namespace))
    hints += [opt_out_hint(g, namespace) for g in opted]
    hint = "\n".join(hints)
    gate(report, force, "sidecars", "sidecars", f"namespace/{namespace}",
         f"{english.of_total(len(lacking), len(states), 'pod', 'has')} no sidecar in {namespace}: "
         f"{_some(described)}; under STRICT mTLS their connections to meshed pods are refused",
         hint,
         {"pods": [{"pod": p.name, "workload": str(p.workload) if p.workload else f"pod/{p.name}"} for p in lacking]})
    return [{"pod": p.name, "workload": str(p.workload) if p.workload else f"pod/{p.name}"} for p in lacking]


def check_clients(report: Report, snapshot, namespace: str, complete: bool) -> list[dict]:
    """Workloads without sidecars in other namespaces, as workloads (kubectl_mesh.shapes)."""
    if not complete:
        from kubectl_mesh.access import Denied

        denied = Denied("list", "pods", None)
        report.add(skipped("clients", "clients", "cluster",
                           "clients without sidecars in other namespaces were not checked: pods in other "
                           f"namespaces are not readable (needs {denied.permission})", denied))
        return []
    groups = inventory.unmeshed_clients(snapshot, namespace)
    clients = [shapes.workload(g) for g in groups]
    if not groups:
        report.add(Check("clients", "clients", "cluster", PASS,
                         "no workload without a sidecar in other namespaces"))
        return clients
    namespaces = sorted({g.ref.namespace for g in groups})
    report.add(Check(
        "clients", "clients", "cluster", WARN,
        f"{english.count(len(groups), 'workload')} without sidecars in other namespaces ({_some(namespaces)}) "
        f"cannot reach {namespace} under STRICT if {'it calls' if len(groups) == 1 else 'they call'} it: "
        f"{_some([f'{g.ref.namespace}/{g.ref}' for g in groups])}",
        "enable injection in those namespaces first (kubectl mesh enable NAMESPACE), or keep PERMISSIVE",
        {"clients": [c["namespace"] + "/" + c["ref"] for c in clients]},
    ))
    return clients


def check_current_mode(report: Report, snapshot, namespace: str, wanted: str, force: bool) -> mtls.Effective:
    """The advice about the way there, before anything is written: DISABLE straight to STRICT
    is refused (PERMISSIVE first gives clients time to move to mTLS); STRICT to PERMISSIVE
    says what it weakens."""
    current = mtls.namespace_mode(snapshot, namespace)
    subject = f"namespace/{namespace}"
    if current.unknown and wanted == "STRICT":
        # Whether clients had time to move to mTLS cannot be told: refused, not guessed.
        gate(report, force, "current-mode", "mode", subject,
             f"{current.unknown_message()}; cannot tell whether going to STRICT is safe",
             f"ask your platform team for: {current.denied.permission}; or --force", current.denied.as_dict())
        return current
    if current.unknown:
        report.add(skipped("current-mode", "mode", subject, current.unknown_message(), current.denied))
        return current
    if wanted == "STRICT" and current.mode == "DISABLE":
        gate(report, force, "permissive-first", "mode", subject,
             f"current mode is DISABLE ({current.source}): going straight to STRICT cuts off every client at "
             "once, with no time to move to mTLS",
             f"go through PERMISSIVE first: {shell('kubectl', 'mesh', 'mtls', namespace, 'permissive')}, "
             f"check traffic ({shell('kubectl', 'mesh', 'verify', namespace)}), then strict; "
             "--force goes straight to STRICT")
    elif wanted == "PERMISSIVE" and current.mode == "STRICT":
        report.add(Check(
            "weakens", "mode", subject, WARN,
            f"STRICT -> PERMISSIVE weakens {namespace}: its pods accept plain-text connections again, from "
            "callers without a sidecar and so without a verified identity; AuthorizationPolicies that match "
            "on source principals or namespaces no longer see who such a caller is",
            "when the reason for PERMISSIVE is gone, go back: "
            + shell("kubectl", "mesh", "mtls", namespace, "strict")))
    else:
        report.add(Check("current-mode", "mode", subject, PASS,
                         f"current mode {current.mode} ({current.source})"))
    return current


def check_overrides(report: Report, snapshot, namespace: str, wanted: str) -> None:
    """Workload policies that keep another mode than the namespace's."""
    for policy in snapshot.of_kind("PeerAuthentication", namespace):
        if mtls.is_namespace_wide(policy):
            continue
        selector = (policy.get("spec") or {}).get("selector") or {}
        mode = mtls.policy_mode(policy)
        port_settings = (policy.get("spec") or {}).get("portLevelMtls") or {}
        ports = {str(p): (s or {}).get("mode") for p, s in port_settings.items()}
        differ = [m for m in [mode, *ports.values()] if m and m not in ("UNSET", wanted)]
        if differ:
            where = ", ".join(f"port {p}: {m}" for p, m in ports.items() if m and m != wanted)
            report.add(Check(
                "workload-override", "mode", f"peerauthentication/{name_of(policy)}", WARN,
                f"peerauthentication/{name_of(policy)} keeps {mode or 'the namespace mode'}"
                + (f" ({where})" if where else "")
                + f" for pods with {format_labels(selector.get('matchLabels') or {})}; the namespace's {wanted} "
                "does not apply there",
                "that is deliberate for a port that must accept plain text; otherwise remove the override"))


def check_duplicates(report: Report, snapshot, namespace: str) -> None:
    policies = mtls.namespace_wide_policies(snapshot, namespace)
    if len(policies) > 1:
        names = [name_of(p) for p in policies]
        report.add(Check(
            "single-policy", "mode", f"namespace/{namespace}", WARN,
            f"{len(policies)} namespace-wide PeerAuthentications in {namespace}: {', '.join(names)}; Istio uses "
            f"the oldest, {names[0]}, which is the one changed",
            "delete the others: " + shell("kubectl", "delete", "peerauthentication", "-n", namespace, *names[1:])))


# -- the command --------------------------------------------------------------------------------
@mesh_command("mtls", examples=[
    ("kubectl mesh mtls my-app permissive", "accept mTLS and plain text: the first step"),
    ("kubectl mesh mtls my-app strict", "mTLS only; refused while a pod lacks a sidecar"),
    ("kubectl mesh mtls my-app status", "the effective mode per workload, and where it comes from"),
    ("kubectl mesh mtls strict -n my-app --dry-run -o json", ".requested.namespaces[0].mtls.mode, .refusedBy"),
])
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
@click.argument("mode", metavar="strict|permissive|status", required=False,
                shell_complete=lambda ctx, param, incomplete: [m for m in MODES if m.startswith(incomplete)])
@click.option("--force", is_flag=True,
              help="Go ahead despite a refusing check (pods without sidecars, DISABLE straight to STRICT).")
def command(settings, ns, mode, force):
    """Set or show the namespace's mTLS mode (the guide's step 2).

    STRICT is refused while a pod of the namespace has no sidecar, and
    straight from DISABLE (go through PERMISSIVE first); workloads without
    sidecars in other namespaces, which could be its clients, are named.
    """
    ns, mode = parse_arguments(ns, mode)
    runner = settings.runner()
    namespace = settings.resolve_namespace(ns, runner, explicit=mode != "status")
    if mode == "status":
        snapshot, _ = _read(runner, namespace, False)
        return status_report(snapshot, namespace)
    wanted = mode.upper()
    snapshot, complete = _read(runner, namespace, wanted == "STRICT")
    report = Report(title=f"mTLS {wanted} for namespace {namespace}")
    existing_all = mtls.namespace_wide_policies(snapshot, namespace)
    existing = existing_all[0] if existing_all else None
    name = name_of(existing) if existing else policy_name(snapshot, namespace)
    previous = check_current_mode(report, snapshot, namespace, wanted, force)
    check_duplicates(report, snapshot, namespace)
    report.data["namespaces"] = [shapes.namespace_state(snapshot, namespace, with_workloads=True)]  # live
    report.data["requested"] = {"namespaces": [{"name": namespace, "mtls": {"mode": wanted}}]}
    report.data["previous"] = {"namespaces": [{"name": namespace, "mtls": shapes.mtls_mode(previous)}]}
    report.data["peerAuthentication"] = {"name": name, "namespace": namespace}
    if wanted == "STRICT":
        check_sidecars(report, snapshot, namespace, force)
        report.data["clientsWithoutSidecar"] = check_clients(report, snapshot, namespace, complete)
    check_overrides(report, snapshot, namespace, wanted)
    if report.refused:
        return report

    def merged(current):
        if current is not None and not mtls.is_namespace_wide(current):
            raise errors.Refused(f"peerauthentication/{name} selects workloads; it is not the namespace's policy")
        return merge.peer_authentication(current, namespace=namespace, mode=wanted, name=name)

    writer = Writer(runner, progress=progress)
    ref = ObjectRef("PeerAuthentication", namespace, name)
    execute(report, [writer.applying(ref, merged, existing, reason=f"namespace-wide mode {wanted}", action="mtls")],
            runner=runner)
    if report.plan and report.plan[-1].status in (APPLIED, UNCHANGED):
        report.data["namespaces"] = [shapes.state_after(snapshot, namespace, [merged(existing)], with_workloads=True)]
    return report


def status_report(snapshot, namespace: str) -> Report:
    from kubectl_mesh.commands.status import peer_authentications

    report = Report(title=f"mTLS in namespace {namespace}")
    ns_mode = mtls.namespace_mode(snapshot, namespace)
    if ns_mode.unknown:
        report.add(skipped("namespace-mode", "mode", f"namespace/{namespace}",
                           f"namespace {namespace}: {ns_mode.unknown_message()}", ns_mode.denied))
    else:
        report.add(Check("namespace-mode", "mode", f"namespace/{namespace}", PASS,
                         f"namespace {namespace}: {ns_mode.mode} ({ns_mode.source})"))
    check_duplicates(report, snapshot, namespace)
    state = shapes.namespace_state(snapshot, namespace, with_workloads=True)
    state["peerAuthentications"] = peer_authentications(snapshot, namespace)
    report.data["namespaces"] = [state]
    for workload in state["workloads"]:
        pods = workload["pods"]
        lacking = pods["total"] - pods["meshed"]
        effective = workload["mtls"]
        strict = effective["mode"] == "STRICT" or any(p["mode"] == "STRICT" for p in effective["ports"])
        if lacking and strict:
            report.add(Check(
                "sidecar-under-strict", "sidecars", workload["ref"], WARN,
                f"{workload['ref']}: {english.of_total(lacking, pods['total'], 'pod', 'has')} no sidecar although "
                f"STRICT applies ({effective['source']}); their plain-text calls to meshed pods are refused",
                f"enable injection and restart: {shell('kubectl', 'mesh', 'enable', namespace)}"))
    rows = state["workloads"]
    if rows:
        width = max(len(r["ref"]) for r in rows)
        report.text.append(f"{'WORKLOAD':<{width}}  {'SIDECARS':>8}  {'MODE':<10}  SOURCE")
        for row in rows:
            report.text.append(f"{row['ref']:<{width}}  {row['pods']['meshed']:>3}/{row['pods']['total']:<4}  "
                               f"{row['mtls']['mode']:<10}  {row['mtls']['source']}")
            for port in row["mtls"]["ports"]:
                report.text.append(f"{'':<{width}}  {'':>8}  port {port['port']}: {port['mode']} ({port['source']})")
    else:
        report.text.append(f"no pods in {namespace}")
    report.summary = f"namespace {namespace}: {ns_mode.mode}"
    return report
