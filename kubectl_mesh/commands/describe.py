"""`describe POD`: `istioctl x describe pod`, parsed into sections and warnings."""

from __future__ import annotations

import click

from kubectl_mesh import errors
from kubectl_mesh.command import mesh_command
from kubectl_mesh.commands import _pod
from kubectl_mesh.istioctl_checks import Target, checks_from_describe, describe_args
from kubectl_mesh.report import Report


@mesh_command("describe", examples=[
    ("kubectl mesh describe web-7d4b9c-x2x8p -n my-app", "one pod: its services, routes, subsets and mTLS"),
    ("kubectl mesh describe deploy/web -n my-app", "one ready pod of the Deployment, named in the output"),
    ("kubectl mesh describe -l app=web,version=v2 -n my-app", "one ready pod the selector selects"),
    ("kubectl mesh describe deploy/web -n my-app -o json", ".describe.warnings[], .pod.name"),
])
@click.argument("pod", metavar="POD|TYPE/NAME", required=False, shell_complete=_pod.complete_targets)
@click.option("-l", "--selector", metavar="SELECTOR", help="Pick a pod these labels select, e.g. app=web.")
def command(settings, pod, selector):
    """Run `istioctl x describe pod POD -n NS` and parse what it prints.

    POD is a pod's name (or pod/NAME); a workload (deploy/NAME, sts/NAME,
    ds/NAME) or -l SELECTOR stands for one of its pods, ready and meshed if
    one is, and the output names it.

    Text output shows istioctl's own text, then its warnings as checks;
    `-o json` gives the pod, services, DestinationRules, VirtualServices,
    mTLS mode and warnings as data. Exit 1 when a warning means traffic
    fails (no sidecar, proxy not ready, route to a missing subset).
    """
    from kubectl_mesh.istioctl_parse import parse_describe

    _pod.parse(pod, selector)  # bad input is exit 2 before anything runs
    runner = settings.runner()
    namespace = settings.resolve_namespace(None, runner)
    target = _pod.resolve(runner, namespace, pod, selector)
    try:
        text = runner.istioctl(*describe_args(target.name, namespace))
    except errors.Forbidden as exc:
        return local_describe(runner, target, namespace, exc)
    parsed = parse_describe(text)
    if parsed.get("pod") and not parsed["pod"].get("namespace"):
        # istioctl prints the namespace only when it differs from -n.
        parsed["pod"]["namespace"] = namespace
    report = Report(text=([target.note, ""] if target.note else []) + text.rstrip("\n").splitlines())
    report.add(*checks_from_describe(Target(target.source or f"pod/{target.name}", target.name), parsed, namespace))
    report.data["describe"] = parsed
    report.data.update(target.document())
    return report


def local_describe(runner, target: _pod.PodTarget, namespace: str, refused: errors.Forbidden) -> Report:
    """istioctl needs more than this user has: say which permission, and show what the plugin
    computes from the namespace's objects instead (describe_local)."""
    from kubectl_mesh.access import Denied, parse_forbidden, skipped
    from kubectl_mesh.describe_local import describe
    from kubectl_mesh.snapshot import read_cluster

    pod = target.name
    denied = parse_forbidden(refused.message) or Denied("get", "pods", namespace)
    lines, data = describe(read_cluster(runner, namespace=namespace), pod, namespace)
    report = Report(text=([target.note, ""] if target.note else []) + lines)
    report.add(skipped("istioctl-describe", "istioctl", f"pod/{pod}",
                       f"istioctl x describe refused (needs {denied.permission}); shown from the namespace's "
                       "objects instead, without the proxy's live configuration", denied))
    report.data["describe"] = {**data, "source": "kubectl-mesh"}
    report.data.update(target.document())
    return report
