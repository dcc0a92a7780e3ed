"""`enable NS`: label for injection, restart what lacks the proxy, wait, verify.

Idempotent: it plans against what is there, so a second run (or a run after
an interrupt) does only what is left, and says when that is nothing.
"""

from __future__ import annotations

import click

from kubectl_mesh import errors, injection, rollout, validate
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.namespace_labels import label_step
from kubectl_mesh.report import APPLIED, FAILED, PLANNED, WARN, Check, Report, Step, dry_run_summary
from kubectl_mesh.snapshot import read_cluster


def restart_steps(runner, namespace: str, plan: injection.RestartPlan) -> list[Step]:
    return [
        Step("restart", str(r.workload),
             runner.display("kubectl", rollout.restart_args(namespace, [r.workload])),
             r.reason, PLANNED)
        for r in plan.restarts
    ]


def orphan_checks(namespace: str, plan: injection.RestartPlan) -> list[Check]:
    return [
        Check("sidecar-injected", "sidecars", f"pod/{p.name}", WARN,
              f"pod/{p.name} lacks istio-proxy and has no Deployment, StatefulSet or DaemonSet to restart",
              f"delete and recreate it: kubectl delete pod {p.name} -n {namespace}")
        for p in plan.orphans
    ]


def apply_restarts(runner, settings, namespace: str, plan: injection.RestartPlan, steps: list[Step],
                   wait: bool, report: Report, unfinished: list | None = None) -> None:
    """One `kubectl rollout restart` for all, then wait for each rollout, and for
    the rollouts already under way (`unfinished`, e.g. left by an interrupted run)."""
    refs = [r.workload for r in plan.restarts]
    if refs:
        rollout.restart(runner, namespace, refs)
        for step in steps:
            step.status = APPLIED
    pending = list(dict.fromkeys([*refs, *(unfinished or [])]))
    if not wait or not pending:
        return
    results = rollout.wait(runner, namespace, pending, settings.timeout, progress)
    steps_by_target = {step.target: step for step in steps}
    for result in results:
        target = str(result.workload)
        step = steps_by_target.get(target)
        if step is None:  # a rollout we only waited for
            report.add(Check("rollout-complete", "rollouts", target, "pass" if result.ok else "fail",
                             f"{target}: rollout already under way {'finished' if result.ok else 'did not finish'}",
                             "" if result.ok else result.message))
        elif not result.ok:
            step.status = FAILED
            step.reason += f"; {result.message}"
        if not result.ok and isinstance(result.error, errors.TimedOut) and report.error is None:
            report.error = errors.TimedOut(
                f"rollout not finished within --timeout {settings.timeout:g}s: {target}; "
                f"run the same command again to keep waiting"
            )


def finish_with_verify(settings, runner, namespace: str, report: Report, *, use_istioctl: bool,
                       parallel: int) -> None:
    from kubectl_mesh.commands.verify import verify_namespace

    verified = verify_namespace(settings, runner, namespace, use_istioctl=use_istioctl, parallel=parallel)
    report.add(*verified.checks)
    report.data["verify"] = verified.data.get("verify")


@mesh_command("enable")
@click.argument("ns", metavar="NAMESPACE", required=False, shell_complete=complete_namespaces)
@click.option("--revision", metavar="REV", help="Inject with this control-plane revision (istio.io/rev=REV).")
@click.option("--restart", "restart_policy", type=click.Choice(["missing", "all", "none"]), default="missing",
              show_default=True, help="Which workloads to restart: those whose pods lack the proxy, all, none.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for each rollout to finish.")
@click.option("--force", is_flag=True, help="Override safety refusals (ambient namespace, Istio not installed).")
@click.option("--istioctl/--no-istioctl", "use_istioctl", default=True,
              help="Run istioctl checks in the final verification.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 32),
              help="istioctl calls run at once during verification.")
def command(settings, ns, revision, restart_policy, wait, force, use_istioctl, parallel):
    """Enable sidecar injection for NAMESPACE and restart what lacks the proxy.

    Labels the namespace istio-injection=enabled (or istio.io/rev=REV),
    replacing a conflicting label; restarts only the Deployments,
    StatefulSets and DaemonSets with pods lacking istio-proxy; waits for their
    rollouts; then runs `verify`. Running it again changes nothing.
    """
    if revision:
        validate.revision(revision)
    runner = settings.runner()
    namespace = settings.resolve_namespace(ns, runner)
    snapshot = read_cluster(runner, namespace=namespace)
    ns_obj = snapshot.require_namespace(namespace)
    report = Report(title=f"Enabling sidecar injection in namespace {namespace}")
    if snapshot.istio_crds is False and not force:
        report.refused = True
        report.add(Check("istio-installed", "cluster", "istio", "fail",
                         "Istio is not installed on this cluster (its CRDs are missing): injection would do nothing",
                         "install Istio first, or pass --force to label anyway"))
        return report
    # Refuses (exit 3) on an ambient namespace unless --force.
    label, future_ns = label_step(runner, ns_obj, lambda obj: injection.enable_labels(obj, revision, force=force),
                                  context=settings.context)
    plan = injection.enable_restarts(snapshot, namespace, future_ns, restart_policy)
    steps = restart_steps(runner, namespace, plan)
    report.plan = [label, *steps]
    report.add(*orphan_checks(namespace, plan))
    if settings.dry_run:
        report.summary = dry_run_summary(report.plan)
        return report
    apply_restarts(runner, settings, namespace, plan, steps, wait, report,
                   unfinished=rollout.in_progress(snapshot, namespace))
    nothing = label.status != APPLIED and not steps
    if not wait and steps:
        report.notes.append(f"not verified (--no-wait): run `kubectl mesh verify {namespace}` once the rollouts finish")
    else:
        finish_with_verify(settings, runner, namespace, report, use_istioctl=use_istioctl, parallel=parallel)
    if nothing:
        report.summary = (f"nothing to do: namespace {namespace} is already enabled and no workload needs a restart; "
                          + ("verified" if report.success else "but verification failed"))
    return report
