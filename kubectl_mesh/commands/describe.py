"""`describe POD`: `istioctl x describe pod`, parsed into sections and warnings."""

from __future__ import annotations

import click

from kubectl_mesh import validate
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
    text = runner.istioctl(*describe_args(pod, namespace))
    parsed = parse_describe(text)
    if parsed.get("pod") and not parsed["pod"].get("namespace"):
        # istioctl prints the namespace only when it differs from -n.
        parsed["pod"]["namespace"] = namespace
    report = Report(text=text.rstrip("\n").splitlines())
    report.add(*checks_from_describe(Target(f"pod/{pod}", pod), parsed, namespace))
    report.data["describe"] = parsed
    return report
