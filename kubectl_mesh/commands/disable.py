"""`disable NS`: remove injection and restart the meshed workloads.

Refuses while STRICT mTLS applies in the namespace: its pods would lose
their sidecars and with them every meshed client's access.
"""

from __future__ import annotations

import click

from kubectl_mesh import english, injection, inventory, mesh, mtls, shapes
from kubectl_mesh.apply.namespace import relabel_and_restart
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.report import APPLIED, FAIL, PASS, Check, Report, gate
from kubectl_mesh.snapshot import read_cluster
from kubectl_mesh.text import command as shell


def strict_sources(snapshot, namespace: str) -> list[str]:
    """Where STRICT mTLS applies to the namespace: mesh, namespace, workload or port level."""
    sources = []
    effective = mtls.namespace_mode(snapshot, namespace)
    if effective.mode == "STRICT":
        sources.append(effective.source)
    for policy in snapshot.of_kind("PeerAuthentication", namespace):
        if mtls.is_namespace_wide(policy):
            continue
        port_strict = any((s or {}).get("mode") == "STRICT"
                          for s in ((policy.get("spec") or {}).get("portLevelMtls") or {}).values())
        if mtls.policy_mode(policy) == "STRICT" or port_strict:
            sources.append(mtls.describe_policy(policy, "workload"))
    return sources


def sidecar_left_checks(snapshot, namespace: str) -> list[Check]:
    checks = []
    for group in inventory.by_workload(inventory.namespace_pods(snapshot, namespace)):
        meshed = group.meshed
        subject = str(group.ref)
        if meshed:
            checks.append(Check("sidecar-removed", "sidecars", subject, FAIL,
                                f"{subject}: {english.of_total(len(meshed), len(group.pods), 'pod')} still "
                                f"{english.agree(len(meshed), 'carries')} istio-proxy",
                                shell("kubectl", "rollout", "restart", subject, "-n", namespace)))
        else:
            checks.append(Check("sidecar-removed", "sidecars", subject, PASS,
                                f"{subject}: no pod carries istio-proxy"))
    return checks


@mesh_command("disable", examples=[
    ("kubectl mesh disable my-app", "remove the injection label, restart the meshed workloads, check"),
    ("kubectl mesh disable my-app --dry-run", "what it would change"),
    ("kubectl mesh disable my-app --force", "even while STRICT mTLS applies (cuts off its meshed callers)"),
])
@click.argument("ns", metavar="NAMESPACE", required=False, shell_complete=complete_namespaces)
@click.option("--restart", "restart_policy", type=click.Choice(["meshed", "all", "none"]), default="meshed",
              show_default=True, help="Which workloads to restart: those whose pods carry the proxy, all, none.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for each rollout to finish.")
@click.option("--force", is_flag=True, help="Disable even while STRICT mTLS applies to the namespace.")
def command(settings, ns, restart_policy, wait, force):
    """Remove sidecar injection from NAMESPACE and restart the meshed workloads."""
    runner = settings.runner()
    namespace = settings.resolve_namespace(ns, runner, explicit=True)
    snapshot = read_cluster(runner, namespace=namespace)
    ns_obj = snapshot.require_namespace(namespace)
    report = Report(title=f"Disabling sidecar injection in namespace {namespace}")
    report.data["namespaces"] = [shapes.namespace_state(snapshot, namespace)]  # live, until changed
    future = injection.disable_labels(ns_obj).applied_to(ns_obj)
    report.data["requested"] = {"namespaces": [{"name": namespace, "injection": shapes.injection(future)}]}
    strict = strict_sources(snapshot, namespace)
    unknown = mtls.namespace_mode(snapshot, namespace)
    if unknown.unknown and not strict:
        gate(report, force, "strict-mtls", "mtls", f"namespace/{namespace}",
             f"{unknown.unknown_message()}; if STRICT applies, pods without sidecars can no longer talk to "
             "meshed services", f"ask your platform team for: {unknown.denied.permission}; or --force",
             unknown.denied.as_dict())
        if report.refused:
            return report
    if strict:
        gate(report, force, "strict-mtls", "mtls", f"namespace/{namespace}",
             f"STRICT mTLS applies to {namespace} ({'; '.join(strict)}): without sidecars its pods "
             "can no longer talk to meshed services, nor they to it",
             f"{shell('kubectl', 'mesh', 'mtls', namespace, 'permissive')} first, or pass --force")
        if report.refused:
            return report
    if mesh.injection_mode(ns_obj) == "ambient":
        report.notes.append(f"namespace {namespace} is in ambient mode; its istio.io/dataplane-mode label is kept")
    plan = injection.disable_restarts(snapshot, namespace, restart_policy)
    restarts = relabel_and_restart(report, runner, snapshot, ns_obj, injection.disable_labels, plan.restarts,
                                   wait=wait, progress=progress)
    if restarts is None:
        return report
    label = report.plan[0]
    if label.status == APPLIED:
        report.data["namespaces"] = [shapes.state_after(snapshot, namespace, [future])]
    if wait or not restarts.steps:
        after = read_cluster(runner, namespace=namespace)
        report.data["namespaces"] = [shapes.namespace_state(after, namespace)]
        report.add(*sidecar_left_checks(after, namespace))
    else:
        progress("not verified (--no-wait)")
    if label.status != APPLIED and not restarts.steps:
        report.summary = f"nothing to do: namespace {namespace} has no injection label and no pod carries istio-proxy"
    return report
