"""`verify [NS]`: the guide's verification, as checks.

Namespace labelled; every pod has istio-proxy (container or native sidecar);
pods that lack it named with the workload to restart; proxies ready;
effective mTLS mode; every canary's subsets that receive traffic select a
ready pod; and, with istioctl, `x describe pod` and `proxy-config routes` for
one pod per workload, their warnings turned into checks. `-A` verifies every
namespace that runs workloads, a section each.
"""

from __future__ import annotations

import click

from kubectl_mesh import canary_health, english, errors, inventory, istioctl_checks, mesh, mtls, shapes
from kubectl_mesh.access import skipped
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.fixes import opt_out_hint, restart_hint
from kubectl_mesh.report import FAIL, PASS, SKIP, WARN, Check, Report
from kubectl_mesh.snapshot import Snapshot, read_cluster
from kubectl_mesh.text import command as shell

CATEGORY_NS = "namespace"
CATEGORY_PODS = "sidecars"
CATEGORY_MTLS = "mtls"
MAX_NAMED = 5


def _names(states: list[inventory.PodState]) -> str:
    names = [s.name for s in states]
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def namespace_checks(snapshot: Snapshot, namespace: str) -> list[Check]:
    ns_obj = snapshot.namespace(namespace)
    subject = f"namespace/{namespace}"
    denied = snapshot.denial("Namespace", namespace) if ns_obj is None else None
    if denied is not None:
        return [skipped("namespace-labelled", CATEGORY_NS, subject,
                        f"injection label unknown: namespace {namespace} is not readable (needs {denied.permission})",
                        denied)]
    if ns_obj is None:
        return [Check("namespace-exists", CATEGORY_NS, subject, FAIL, f"namespace {namespace} not found",
                      "kubectl get namespaces (check the name and --context)")]
    mode = mesh.injection_mode(ns_obj)
    labels = mesh.labels_of(ns_obj)
    checks = []
    if mode == "enabled":
        checks.append(Check("namespace-labelled", CATEGORY_NS, subject, PASS,
                            f"namespace {namespace} is labelled istio-injection=enabled"))
    elif mode == "revision":
        checks.append(Check("namespace-labelled", CATEGORY_NS, subject, PASS,
                            f"namespace {namespace} is labelled istio.io/rev={labels[mesh.REVISION_LABEL]}"))
    elif mode == "ambient":
        checks.append(Check("namespace-labelled", CATEGORY_NS, subject, WARN,
                            f"namespace {namespace} uses ambient mode (istio.io/dataplane-mode=ambient): no sidecars",
                            "sidecar checks do not apply; use `kubectl mesh enable --force` to switch to sidecars"))
    else:
        why = "istio-injection=disabled" if mode == "disabled" else "no istio-injection or istio.io/rev label"
        checks.append(Check("namespace-labelled", CATEGORY_NS, subject, FAIL,
                            f"namespace {namespace} is not labelled for injection ({why})",
                            shell("kubectl", "mesh", "enable", namespace)))
    conflict = mesh.conflicting_injection_labels(ns_obj)
    if conflict:
        checks.append(Check("namespace-label-conflict", CATEGORY_NS, subject, WARN,
                            f"namespace {namespace} has conflicting labels {', '.join(conflict)}; "
                            "istio-injection wins",
                            f"{shell('kubectl', 'mesh', 'enable', namespace)} (keeps one label)"))
    return checks


def sidecar_checks(snapshot: Snapshot, namespace: str) -> list[Check]:
    """One check per workload: pods with the proxy, pods lacking it, proxies ready."""
    checks: list[Check] = []
    ns_obj = snapshot.namespace(namespace)
    mode = mesh.injection_mode(ns_obj)
    pods_denied = snapshot.denial("Pod", namespace)
    if pods_denied is not None:
        checks.append(skipped("sidecar-injected", CATEGORY_PODS, f"namespace/{namespace}",
                              f"sidecars not checked: the pods of {namespace} are not readable "
                              f"(needs {pods_denied.permission})", pods_denied))
        return checks
    states = inventory.namespace_pods(snapshot, namespace)
    if not states:
        checks.append(Check("pods-present", CATEGORY_PODS, f"namespace/{namespace}", SKIP,
                            f"no running pods in {namespace}"))
        return checks
    for group in inventory.by_workload(states):
        ref = group.ref
        subject = f"{ref.kind.lower()}/{ref.name}"
        total = len(group.pods)
        meshed = group.meshed
        opted = [p for p in group.pods if p.opted_out and not p.has_sidecar]
        lacking = [p for p in group.pods if not p.has_sidecar and not p.opted_out]
        not_ready = [p for p in meshed if p.proxy_ready is False]
        if lacking:
            if mode in ("enabled", "revision"):
                message = (f"{subject}: {english.of_total(len(lacking), total, 'pod', 'lacks')} istio-proxy "
                           f"({_names(lacking)}); {'it was' if len(lacking) == 1 else 'they were'} created before "
                           "injection was enabled")
                hint = restart_hint(ref, namespace)
            elif mode == "ambient":
                checks.append(Check("sidecar-injected", CATEGORY_PODS, subject, SKIP,
                                    f"{subject}: ambient namespace, no sidecar expected"))
                continue
            else:
                message = (f"{subject}: {english.of_total(len(lacking), total, 'pod', 'has')} no istio-proxy "
                           f"({_names(lacking)})")
                hint = shell("kubectl", "mesh", "enable", namespace)
            checks.append(Check("sidecar-injected", CATEGORY_PODS, subject, FAIL, message, hint,
                                data={"pods": [p.name for p in lacking], "workload": str(ref)}))
        elif opted and not meshed:
            checks.append(Check("sidecar-injected", CATEGORY_PODS, subject, WARN,
                                f"{subject}: opted out of injection (sidecar.istio.io/inject=false), not in the mesh",
                                "with STRICT mTLS meshed services will refuse its plain-text requests",
                                data={"pods": [p.name for p in opted], "workload": str(ref)}))
        else:
            layout = " and ".join(sorted({p.layout for p in meshed if p.layout}))
            extra = f"; {len(opted)} opted out" if opted else ""
            checks.append(Check("sidecar-injected", CATEGORY_PODS, subject, PASS,
                                f"{subject}: {len(meshed)}/{english.count(total, 'pod')} "
                                f"{english.agree(len(meshed), 'has')} istio-proxy ({layout}){extra}"))
        if not_ready:
            checks.append(Check("proxy-ready", CATEGORY_PODS, subject, FAIL,
                                f"{subject}: istio-proxy not ready in {_names(not_ready)}",
                                shell("kubectl", "logs", not_ready[0].name, "-n", namespace, "-c", "istio-proxy"),
                                data={"pods": [p.name for p in not_ready]}))
        elif meshed:
            checks.append(Check("proxy-ready", CATEGORY_PODS, subject, PASS,
                                f"{subject}: istio-proxy ready in {len(meshed)}/{english.count(len(meshed), 'pod')}"))
    return checks


def mtls_checks(snapshot: Snapshot, namespace: str) -> list[Check]:
    if snapshot.istio_crds is False:
        return [Check("mtls-mode", CATEGORY_MTLS, f"namespace/{namespace}", SKIP,
                      "mTLS not checked: Istio's CRDs are not installed")]
    effective = mtls.namespace_mode(snapshot, namespace)
    subject = f"namespace/{namespace}"
    if effective.unknown:
        # Never a guessed default: the user sees what could not be read and who can grant it.
        checks = [skipped("mtls-mode", CATEGORY_MTLS, subject, effective.unknown_message(), effective.denied)]
    else:
        checks = [Check("mtls-mode", CATEGORY_MTLS, subject, PASS,
                        f"mTLS mode {effective.mode} ({effective.source})")]
    states = inventory.namespace_pods(snapshot, namespace)
    for group in inventory.by_workload(states):
        labels = mesh.labels_of(group.pods[0].pod)
        workload_effective = mtls.workload_mode(snapshot, namespace, labels)
        if workload_effective.unknown:
            pass  # the namespace's skip says it once
        elif workload_effective.source != effective.source or workload_effective.ports:
            ports = "".join(f"; port {p}: {m}" for p, (m, _) in sorted(workload_effective.ports.items()))
            message = f"{group.ref}: mTLS mode {workload_effective.mode} ({workload_effective.source}){ports}"
            checks.append(Check("mtls-mode", CATEGORY_MTLS, str(group.ref), PASS, message))
        lacking = [p for p in group.pods if not p.has_sidecar]
        if lacking and mtls.strict_applies(workload_effective):
            opted = all(p.opted_out for p in lacking)
            checks.append(Check("mtls-strict-without-sidecar", CATEGORY_MTLS, str(group.ref), FAIL,
                                f"{group.ref}: STRICT mTLS applies but {_names(lacking)} "
                                f"{english.agree(len(lacking), 'has')} no sidecar; meshed clients get "
                                "connection refused",
                                opt_out_hint(group, namespace) if opted else restart_hint(group.ref, namespace)))
    return checks


def proxy_image_checks(snapshot: Snapshot, namespace: str, settings) -> list[Check]:
    """Pods whose proxy the injector would inject differently now (another image after an
    upgrade, another revision after a move), per workload, with the restart that fixes it:
    the knowledge diagnose's MESH-INJ-005 (IST0158) and MESH-INJ-007 use (kubectl_mesh.drift)."""
    from kubectl_mesh import drift

    subject = f"namespace/{namespace}"
    if not settings.known:
        return [Check("proxy-current", CATEGORY_PODS, subject, SKIP,
                      f"proxy images not compared with the injector's: {settings.unknown_why}")]
    ns_obj = snapshot.namespace(namespace)
    if drift.namespace_revision(ns_obj, settings) is None:
        return []
    checks = []
    states = [s for s in inventory.namespace_pods(snapshot, namespace) if s.has_sidecar]
    for group in inventory.by_workload(states):
        found = [d for d in (drift.pod_drift(s.pod, ns_obj, settings) for s in group.pods) if d is not None]
        if not found:
            continue
        ref = group.ref
        why = []
        images = sorted({d.image for d in found if d.image_differs})
        if images:
            why.append(f"run {', '.join(images)}, the injector gives {found[0].expected_image or '?'} now")
        revisions = sorted({str(d.revision) for d in found if d.revision_differs})
        if revisions:
            why.append(f"were injected by revision {', '.join(revisions)}, the namespace uses "
                       f"{found[0].expected_revision}")
        names = [mesh.name_of(d.pod) for d in found]
        checks.append(Check("proxy-current", CATEGORY_PODS, f"{ref.kind.lower()}/{ref.name}", WARN,
                            f"{ref.kind.lower()}/{ref.name}: {english.of_total(len(found), len(group.pods), 'pod')} "
                            f"({', '.join(names[:MAX_NAMED])}) {'; '.join(why)}: "
                            f"{'it keeps' if len(found) == 1 else 'they keep'} the old proxy until restarted",
                            restart_hint(ref, namespace),
                            data={"pods": names, "workload": str(ref)}))
    return checks


def core_checks(snapshot: Snapshot, namespace: str) -> tuple[list[Check], dict | None]:
    """Every check that needs only the snapshot (no istioctl), and the namespace's state."""
    checks = namespace_checks(snapshot, namespace)
    if snapshot.namespace(namespace) is None and snapshot.readable("Namespace", namespace):
        return checks, None
    checks += sidecar_checks(snapshot, namespace)
    checks += mtls_checks(snapshot, namespace)
    state = shapes.namespace_state(snapshot, namespace, with_workloads=True)
    state["canaries"] = shapes.canaries(snapshot, namespace) if snapshot.istio_crds is not False else []
    for canary in state["canaries"]:
        checks += canary_health.checks(canary)
    return checks, state


def verify_namespaces(settings, runner, namespaces: list[str] | None, *, use_istioctl: bool,
                      parallel: int) -> Report:
    """The checks of each namespace (None: every one that runs workloads), a section each."""
    from kubectl_mesh import meshconfig

    snapshot = read_cluster(runner, namespace=namespaces[0] if namespaces and len(namespaces) == 1 else None)
    injector = meshconfig.read(runner, snapshot.root_namespace) if snapshot.istio_crds is not False else None
    if namespaces is None:
        namespaces = [n for n in snapshot.namespace_names()
                      if not mesh.is_system_namespace(n) and inventory.live_pods(snapshot, n)]
    several = len(namespaces) > 1 or settings.all_namespaces
    report = Report(title=f"Verifying namespace {namespaces[0]}" if not several else
                    f"Verifying {english.count(len(namespaces), 'namespace')} with workloads")
    report.data["namespaces"] = []
    for namespace in namespaces:
        checks, state = core_checks(snapshot, namespace)
        if snapshot.namespace(namespace) is not None and injector is not None:
            checks += proxy_image_checks(snapshot, namespace, injector)
        visible = snapshot.namespace(namespace) is not None or not snapshot.readable("Namespace", namespace)
        if visible and use_istioctl:
            targets = istioctl_checks.pick_pods(snapshot, namespace)
            if targets:
                progress(f"running istioctl for {english.count(len(targets), 'workload')} in {namespace} "
                         f"({parallel} at a time)")
            checks += istioctl_checks.run(runner, namespace, targets, parallel=parallel)
        if several:
            for check in checks:
                check.section = f"Namespace {namespace}"
        report.add(*checks)
        if state is not None:
            report.data["namespaces"].append(state)
    if not namespaces:
        report.add(Check("workloads-present", CATEGORY_PODS, "cluster", SKIP,
                         "no namespace outside the system namespaces runs workloads"))
    return report


def verify_namespace(settings, runner, namespace: str, *, use_istioctl: bool, parallel: int) -> Report:
    return verify_namespaces(settings, runner, [namespace], use_istioctl=use_istioctl, parallel=parallel)


@mesh_command("verify", all_namespaces=True, examples=[
    ("kubectl mesh verify my-app", "every pod of my-app in the mesh, mTLS, canaries, istioctl's view"),
    ("kubectl mesh verify -A --no-istioctl", "every namespace that runs workloads, a section each"),
    ("kubectl mesh verify my-app -o json", ".success, .namespaces[0].pods.meshed, .namespaces[0].mtls.mode"),
])
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
@click.option("--istioctl/--no-istioctl", "use_istioctl", default=True,
              help="Also run istioctl x describe pod and proxy-config routes for one pod per workload.")
@click.option("--parallel", default=istioctl_checks.DEFAULT_PARALLEL, show_default=True,
              type=click.IntRange(1, 32),
              help="istioctl calls run at once.")
def command(settings, ns, use_istioctl, parallel):
    """Check that every pod of NAMESPACE (or -n) is in the mesh, and that every canary
    sends its traffic to subsets with ready pods; -A for every namespace with workloads.

    Exit 0 when every check passes (warnings allowed), 1 when one fails.
    """
    if settings.all_namespaces and (ns or settings.namespace):
        raise errors.UsageError("give a namespace or -A/--all-namespaces, not both")
    runner = settings.runner()
    if settings.all_namespaces:
        return verify_namespaces(settings, runner, None, use_istioctl=use_istioctl, parallel=parallel)
    namespace = settings.resolve_namespace(ns, runner)
    return verify_namespace(settings, runner, namespace, use_istioctl=use_istioctl, parallel=parallel)
