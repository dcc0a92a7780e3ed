"""`diagnose`: the guide's troubleshooting table as findings, online or offline.

Online it reads the cluster once (one batched `kubectl get`); with `-f` it
reads manifests instead and starts no process at all, so CI can check
manifests before they are applied. Both build a Snapshot and run the same
checks (kubectl_mesh.findings).
"""

from __future__ import annotations

import contextlib
import gc

import click

from kubectl_mesh import english, errors
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command
from kubectl_mesh.report import Report
from kubectl_mesh.untrusted import LIMITS_HELP

FAIL_ON = ("error", "warning")
# The snapshot of the last run, kept alive so that it is not freed object by object
# when the command returns: the process exits without that teardown (cli.main).
KEPT: list = []


def build_report(findings, *, fail_on: str, title: str, source: dict, notes: list[str],
                 suppressed: list | None = None) -> Report:
    """The report of the findings kept; suppressed ones ([(finding, why)]) are counted and
    listed in the JSON (as checks are, with what suppressed them), never failing."""
    from kubectl_mesh.findings import counts, reaches

    suppressed = suppressed or []
    tally = counts(findings)
    tally["suppressed"] = len(suppressed)
    report = Report(title=title)
    report.checks = [f.as_check() for f in findings]
    report.fail_override = reaches(findings, fail_on)
    report.notes = list(notes)
    if suppressed:
        report.notes.append(f"{len(suppressed)} finding{'s' if len(suppressed) != 1 else ''} suppressed "
                            "(--suppress, galley.istio.io/analyze-suppress); -o json lists them")
    report.data = {"counts": tally, "failOn": fail_on, "source": source,
                   "suppressed": [{**f.as_check().as_dict(), "suppressedBy": why} for f, why in suppressed]}
    if findings:
        parts = [f"{tally['error']} error{'s' if tally['error'] != 1 else ''}",
                 f"{tally['warning']} warning{'s' if tally['warning'] != 1 else ''}",
                 f"{tally['info']} info"]
        if suppressed:
            parts.append(f"{len(suppressed)} suppressed")
        verdict = "failing" if report.fail_override else "passing"
        report.summary = f"{', '.join(parts)} ({verdict}: --fail-on {fail_on})"
    else:
        report.summary = f"no findings in {english.count(source.get('objects', 0), 'object')}" + (
            f" ({len(suppressed)} suppressed)" if suppressed else "")
    return report


def offline(settings, files, ns: str | None, mesh_file: tuple[dict, str] | None = None):
    from kubectl_mesh import findings, manifests, meshconfig

    scope = None if settings.all_namespaces else settings.resolve_namespace(ns, required=False)
    loaded = manifests.load(files, namespace=scope, checks_only=True)
    snap = manifests.snapshot(loaded)
    KEPT[:] = [loaded, snap]
    mesh, mesh_source = mesh_file or (None, None)
    try:
        found = findings.run(snap, namespaces={scope} if scope else None,
                             mesh_settings=meshconfig.from_snapshot(snap, mesh, mesh_source))
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        # manifest_types.py refuses what the checks cannot read; should a field slip past it, one
        # line (exit 2), never a traceback.
        raise errors.UsageError(f"the manifests have a field of a type the checks cannot read "
                                f"({type(exc).__name__}: {exc}); check them with kubectl apply --dry-run=server"
                                ) from None
    for finding in found:
        obj = finding.object
        finding.origin = loaded.origin(obj.kind, obj.namespace, obj.name)
    where = f" (namespace {scope})" if scope else ""
    title = (f"Diagnosis of {english.count(len(loaded.objects), 'object')} in "
             f"{english.count(len(loaded.files), 'file')}{where}; no cluster used")
    source = {"type": "manifests", "files": loaded.files, "objects": len(loaded.objects), "namespace": scope}
    return found, title, source, [], snap


def online(settings, ns: str | None, mesh_file: tuple[dict, str] | None = None):
    from kubectl_mesh import findings, meshconfig
    from kubectl_mesh.snapshot import DEFAULT_KINDS, read_cluster

    runner = settings.runner()
    namespace = None if settings.all_namespaces else settings.resolve_namespace(ns, runner)
    snap = read_cluster(runner, namespace=namespace, kinds=(*DEFAULT_KINDS, "Node"), checks_only=True)
    KEPT[:] = [snap]
    if namespace:
        snap.ensure_namespace(namespace)
    mesh, mesh_source = mesh_file or (None, None)
    # The mesh and injector ConfigMaps (exportTo defaults, injection by default, the proxy
    # image injected now): one small read; a user who may not make it gets "unknown".
    if snap.istio_crds is False:  # no Istio: nothing is injected, nothing to read
        mesh_settings = meshconfig.from_configmaps([], mesh=mesh, mesh_source=mesh_source)
    else:
        mesh_settings = meshconfig.read(runner, snap.root_namespace, mesh=mesh, mesh_source=mesh_source)
    found = findings.run(snap, namespaces={namespace} if namespace else None, mesh_settings=mesh_settings)
    notes = []
    if not mesh_settings.known:
        notes.append(f"note: {mesh_settings.unknown_why}; checks that need them say so")
    if snap.istio_crds is False:
        notes.append("note: Istio's CRDs are not installed on this cluster; there are no VirtualServices, "
                     "DestinationRules or PeerAuthentications to check")
    if namespace:
        notes.append("note: callers in other namespaces (strict mTLS) are checked with -A")
    objects = sum(len(snap.of_kind(k)) for k in snap.kinds)
    where = f"namespace {namespace}" if namespace else "all namespaces"
    source = {"type": "cluster", "context": settings.context, "namespace": namespace, "objects": objects}
    return found, f"Diagnosis of {where} ({english.count(objects, 'object')} read)", source, notes, snap


@mesh_command("diagnose", all_namespaces=True, examples=[
    ("kubectl mesh diagnose my-app", "the guide's troubleshooting table over one namespace"),
    ("kubectl mesh diagnose -A", "every namespace, and callers across namespaces"),
    ("kubectl mesh diagnose -f k8s/ --fail-on warning", "manifests in CI, before an apply: no cluster"),
    ("kubectl mesh diagnose my-app -o json", ".checks[].id, .checks[].level, .counts.error"),
], epilog="Manifests given with -f are untrusted input. " + LIMITS_HELP)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE|DIR|-",
              help="Check manifests instead of the cluster: files, directories (recursively) or - for "
                   "stdin; repeatable. No cluster is contacted.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="error", show_default=True,
              help="Exit 1 when a finding reaches this level.")
@click.option("--mesh-config", "mesh_config", metavar="FILE",
              help="Istio's mesh config to assume (a MeshConfig YAML, as istioctl analyze --meshConfigFile, "
                   "or the istio ConfigMap) instead of the cluster's or the manifests'.")
@click.option("-S", "--suppress", "suppress", multiple=True, metavar="CODE=KIND NAME[.NAMESPACE]",
              help="Suppress a finding, as istioctl analyze --suppress: CODE an Istio code or one of ours, "
                   "* for any run of characters (e.g. \"IST0102=Namespace *\", \"MESH-RES-001=Deployment "
                   "web.shop\"). Repeatable. The galley.istio.io/analyze-suppress annotation on an object "
                   "does the same. Suppressed findings are counted and listed in -o json.")
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
def command(settings, files, fail_on, mesh_config, suppress, ns):
    """Find the guide's troubleshooting problems: strict mTLS without sidecars,
    canary subsets that select no pods (503), sidecar resources too low, plus the
    istioctl analyze checks on injection, hosts, subsets, ports, conflicting
    VirtualServices and annotations (with their IST codes).

    \b
    kubectl mesh diagnose my-app
    kubectl mesh diagnose -A -o json
    kubectl mesh diagnose -f k8s/ --fail-on warning
    kubectl mesh diagnose -f k8s/ --mesh-config mesh.yaml
    kubectl mesh diagnose -S "IST0102=Namespace *" -S "MESH-RES-001=Deployment web.shop"

    Online it reads NAMESPACE (or -n, the context's namespace, or -A) in one batched
    call, and Istio's mesh and injector ConfigMaps when it may. With -f it reads
    manifests and needs no cluster, as CI does before an apply.

    Exit 1 when a finding reaches --fail-on (default error), in every output mode;
    suppressed findings never count.
    """
    if settings.all_namespaces and (ns or settings.namespace):
        raise errors.UsageError("give a namespace or -A/--all-namespaces, not both")
    from kubectl_mesh import meshconfig
    from kubectl_mesh.findings import CHECKS
    from kubectl_mesh.findings import suppress as suppression

    rules = suppression.parse(suppress)
    known = {spec.id for spec in CHECKS} | {spec.istio_code for spec in CHECKS if spec.istio_code}
    warnings = [f"warning: --suppress {code}: no finding of diagnose has this code; it suppresses nothing"
                for code in suppression.unknown_codes(rules, known)]
    for warning in warnings:
        click.echo(warning, err=True)
    mesh_file = meshconfig.load_file(mesh_config) if mesh_config else None
    with without_cycle_collector():
        if files:
            found, title, source, notes, snap = offline(settings, files, ns, mesh_file)
        else:
            found, title, source, notes, snap = online(settings, ns, mesh_file)
        kept, suppressed = suppression.split(found, rules, snap)
    report = build_report(kept, fail_on=fail_on, title=title, source=source, notes=notes, suppressed=suppressed)
    if not files:
        from kubectl_mesh.access import unread_checks

        # What this user could not read, each with the permission it needs (never failing).
        report.checks += unread_checks(snap)
    return report


@contextlib.contextmanager
def without_cycle_collector():
    """Parsed manifests and kubectl JSON are trees without reference cycles: the cycle
    collector finds nothing in them, yet on a large snapshot its passes cost more CPU
    than the parse itself (about 3x on 10,000 pods). Reference counting still frees
    everything; the collector is back on afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What is still alive (the snapshot, kept to exit: see KEPT) moves to the
            # permanent generation, so the collector, once on, does not walk it again.
            gc.freeze()
            gc.enable()
