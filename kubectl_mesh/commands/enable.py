"""`enable NS`: label for injection, restart what lacks the proxy, wait, verify.

Idempotent: it plans against what is there, so a second run (or a run after
an interrupt) does only what is left, and says when that is nothing.
"""

from __future__ import annotations

import click

from kubectl_mesh import errors, injection, istioctl_checks, revisions, shapes, text, validate
from kubectl_mesh.apply.namespace import relabel_and_restart
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.report import APPLIED, PASS, WARN, Check, Report, gate
from kubectl_mesh.snapshot import read_cluster
from kubectl_mesh.text import command as shell


def orphan_checks(namespace: str, plan: injection.RestartPlan) -> list[Check]:
    return [
        Check("sidecar-injected", "sidecars", f"pod/{p.name}", WARN,
              f"pod/{p.name} lacks istio-proxy and has no Deployment, StatefulSet or DaemonSet to restart",
              f"delete and recreate it: {shell('kubectl', 'delete', 'pod', p.name, '-n', namespace)}")
        for p in plan.orphans
    ]


def revision_exists(report: Report, runner, snapshot, revision: str, force: bool) -> bool:
    """A control plane or revision tag named `revision` runs (else refused, exit 3,
    naming those that do; --force labels anyway). When it cannot be told (istiod's
    namespace not readable), a warning, and the label is set as asked."""
    known = revisions.read(runner, snapshot.root_namespace)
    if known.has(revision):
        report.add(Check("revision-exists", "cluster", f"revision/{revision}", PASS,
                         f"revision {revision} has a control plane (istiod) or revision tag"))
        return True
    if known.unknown and not known.revisions:
        report.add(Check("revision-exists", "cluster", f"revision/{revision}", WARN,
                         f"could not check that revision {revision} exists: {known.unknown}",
                         "if no istiod serves it, pods get no sidecar: kubectl get deployments -n istio-system "
                         "-l app=istiod --show-labels"))
        return True
    gate(report, force, "revision-exists", "cluster", f"revision/{revision}",
         f"no control plane or revision tag {revision} on this cluster (it has {known.listing()}): "
         "labelled for it, the namespace's pods would get no sidecar",
         "use one that exists: "
         + (text.command("kubectl", "mesh", "enable", snapshot.scope or "NAMESPACE", "--revision",
                         sorted(known.revisions | known.tags)[0]) if known.revisions or known.tags
            else "install Istio with that revision first")
         + "; or --force to label anyway",
         {"revision": revision, "revisions": sorted(known.revisions), "tags": sorted(known.tags)})
    return force


def finish_with_verify(settings, runner, namespace: str, report: Report, *, use_istioctl: bool,
                       parallel: int) -> None:
    from kubectl_mesh.commands.verify import verify_namespace

    verified = verify_namespace(settings, runner, namespace, use_istioctl=use_istioctl, parallel=parallel)
    report.add(*verified.checks)
    report.data["namespaces"] = verified.data["namespaces"]  # the state as verified, read after the rollouts


@mesh_command("enable", examples=[
    ("kubectl mesh enable my-app", "label, restart what lacks the proxy, wait, verify"),
    ("kubectl mesh enable my-app --revision canary", "inject with the canary control plane (istio.io/rev=canary)"),
    ("kubectl mesh enable my-app --dry-run", "the label and the restarts it would make"),
    ("kubectl mesh enable my-app --restart none --no-wait", "label only; restart the workloads yourself"),
])
@click.argument("ns", metavar="NAMESPACE", required=False, shell_complete=complete_namespaces)
@click.option("--revision", metavar="REV", help="Inject with this control-plane revision (istio.io/rev=REV).")
@click.option("--restart", "restart_policy", type=click.Choice(["missing", "all", "none"]), default="missing",
              show_default=True, help="Which workloads to restart: those whose pods lack the proxy, all, none.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for each rollout to finish.")
@click.option("--force", is_flag=True,
              help="Override safety refusals (ambient namespace, Istio not installed, unknown revision).")
@click.option("--istioctl/--no-istioctl", "use_istioctl", default=True,
              help="Run istioctl checks in the final verification.")
@click.option("--parallel", default=istioctl_checks.DEFAULT_PARALLEL, show_default=True,
              type=click.IntRange(1, 32),
              help="istioctl calls run at once during verification.")
def command(settings, ns, revision, restart_policy, wait, force, use_istioctl, parallel):
    """Enable sidecar injection for NAMESPACE and restart what lacks the proxy.

    Labels the namespace istio-injection=enabled (or istio.io/rev=REV),
    replacing a conflicting label; restarts only the Deployments,
    StatefulSets and DaemonSets with pods lacking istio-proxy; waits for their
    rollouts; then runs `verify`. Running it again changes nothing.
    """
    if revision is not None:
        validate.revision(revision)
    runner = settings.runner()
    namespace = settings.resolve_namespace(ns, runner, explicit=True)
    snapshot = read_cluster(runner, namespace=namespace)
    ns_obj = snapshot.require_namespace(namespace)
    report = Report(title=f"Enabling sidecar injection in namespace {namespace}")
    report.data["namespaces"] = [shapes.namespace_state(snapshot, namespace)]  # live, until changed
    if snapshot.istio_crds is False and not force:
        gate(report, False, "istio-installed", "cluster", "istio",
             "Istio is not installed on this cluster (its CRDs are missing): injection would do nothing",
             "install Istio first, or pass --force to label anyway")
        return report

    if revision is not None and not revision_exists(report, runner, snapshot, revision, force):
        return report

    def labels(obj):  # refuses (exit 3) on an ambient namespace unless --force
        return injection.enable_labels(obj, revision, force=force)

    try:
        future = labels(ns_obj).applied_to(ns_obj)
    except errors.Refused as exc:
        gate(report, False, "ambient-namespace", "safety", f"namespace/{namespace}", exc.message,
             shell("kubectl", "mesh", "enable", namespace, "--force"))
        return report
    report.data["requested"] = {"namespaces": [{"name": namespace, "injection": shapes.injection(future)}]}
    plan = injection.enable_restarts(snapshot, namespace, future, restart_policy)
    report.add(*orphan_checks(namespace, plan))
    restarts = relabel_and_restart(report, runner, snapshot, ns_obj, labels, plan.restarts,
                                   wait=wait, progress=progress)
    if restarts is None:
        return report
    label = report.plan[0]
    if label.status == APPLIED:
        report.data["namespaces"] = [shapes.state_after(snapshot, namespace, [future])]
    nothing = label.status != APPLIED and not restarts.steps
    if not wait and restarts.steps:
        report.notes.append(f"not verified (--no-wait): run `{shell('kubectl', 'mesh', 'verify', namespace)}` "
                            "once the rollouts finish")
    else:
        finish_with_verify(settings, runner, namespace, report, use_istioctl=use_istioctl, parallel=parallel)
    if nothing:
        report.summary = (f"nothing to do: namespace {namespace} is already enabled and no workload needs a restart; "
                          + ("verified" if report.success else "but verification failed"))
    return report
