"""`describe POD`: `istioctl x describe pod`, parsed into sections and warnings."""

from __future__ import annotations

import click

from kubectl_mesh import errors, validate
from kubectl_mesh.cluster_names import complete_pods
from kubectl_mesh.command import mesh_command
from kubectl_mesh.istioctl_checks import Target, checks_from_describe, describe_args
from kubectl_mesh.report import Report


@mesh_command("describe")
@click.argument("pod", shell_complete=complete_pods)
def command(settings, pod):
    """Run `istioctl x describe pod POD -n NS` and parse what it prints.

    Text output shows istioctl's own text, then its warnings as checks;
    `-o json` gives the pod, services, DestinationRules, VirtualServices,
    mTLS mode and warnings as data. Exit 1 when a warning means traffic
    fails (no sidecar, proxy not ready, route to a missing subset).
    """
    from kubectl_mesh.istioctl_parse import parse_describe

    validate.resource_name(pod, what="pod name")
    runner = settings.runner()
    namespace = settings.resolve_namespace(None, runner)
    try:
        text = runner.istioctl(*describe_args(pod, namespace))
    except errors.Forbidden as exc:
        return local_describe(runner, pod, namespace, exc)
    parsed = parse_describe(text)
    if parsed.get("pod") and not parsed["pod"].get("namespace"):
        # istioctl prints the namespace only when it differs from -n.
        parsed["pod"]["namespace"] = namespace
    report = Report(text=text.rstrip("\n").splitlines())
    report.add(*checks_from_describe(Target(f"pod/{pod}", pod), parsed, namespace))
    report.data["describe"] = parsed
    return report


def local_describe(runner, pod: str, namespace: str, refused: errors.Forbidden) -> Report:
    """istioctl needs more than this user has: say which permission, and show what the plugin
    computes from the namespace's objects instead (describe_local)."""
    from kubectl_mesh.access import Denied, parse_forbidden, skipped
    from kubectl_mesh.describe_local import describe
    from kubectl_mesh.snapshot import read_cluster

    denied = parse_forbidden(refused.message) or Denied("get", "pods", namespace)
    lines, data = describe(read_cluster(runner, namespace=namespace), pod, namespace)
    report = Report(text=lines)
    report.add(skipped("istioctl-describe", "istioctl", f"pod/{pod}",
                       f"istioctl x describe refused (needs {denied.permission}); shown from the namespace's "
                       "objects instead, without the proxy's live configuration", denied))
    report.data["describe"] = {**data, "source": "kubectl-mesh"}
    return report
