"""`routes POD`: `istioctl proxy-config routes`, parsed into rows."""

from __future__ import annotations

import click

from kubectl_mesh import errors
from kubectl_mesh.command import mesh_command
from kubectl_mesh.commands import _pod
from kubectl_mesh.istioctl_checks import Target, checks_from_routes, routes_args
from kubectl_mesh.report import Report


@mesh_command("routes", examples=[
    ("kubectl mesh routes web-7d4b9c-x2x8p -n my-app", "the routes one pod's proxy has"),
    ("kubectl mesh routes deploy/web -n my-app --name http.8080", "one route configuration of one ready pod of web"),
    ("kubectl mesh routes -l app=web -n my-app -o json", ".routes[].virtualService, .pod.name"),
])
@click.argument("pod", metavar="POD|TYPE/NAME", required=False, shell_complete=_pod.complete_targets)
@click.option("-l", "--selector", metavar="SELECTOR", help="Pick a pod these labels select, e.g. app=web.")
@click.option("--name", "route_name", metavar="NAME", help="Only the route configuration NAME (e.g. http.8080).")
def command(settings, pod, selector, route_name):
    """Run `istioctl proxy-config routes POD -n NS` and parse its table.

    POD is a pod's name (or pod/NAME); a workload (deploy/NAME, sts/NAME,
    ds/NAME) or -l SELECTOR stands for one of its pods (they share their
    proxy configuration), ready and meshed if one is, and the output names it.

    `-o json` gives one object a row: name, vhostName, domains, match,
    virtualService. A blank NAME in istioctl's table is a route
    configuration without a name (Envoy's own health and stats routes),
    so it stays blank rather than inheriting the row above.
    """
    from kubectl_mesh.istioctl_parse import parse_routes

    _pod.parse(pod, selector)  # bad input is exit 2 before anything runs
    if route_name == "":
        raise errors.UsageError('invalid --name "": give a route configuration name, e.g. http.8080')
    runner = settings.runner()
    namespace = settings.resolve_namespace(None, runner)
    target = _pod.resolve(runner, namespace, pod, selector)
    args = routes_args(target.name, namespace)
    if route_name is not None:
        args += ["--name", route_name]
    try:
        text = runner.istioctl(*args)
    except errors.Forbidden as exc:
        # The routes Envoy holds come only from the proxy itself: say what istioctl lacked, and
        # where to look with this user's rights (describe shows the VirtualService routes).
        from kubectl_mesh.access import Denied, parse_forbidden, skipped

        denied = parse_forbidden(exc.message) or Denied("create", "pods/portforward", namespace)
        report = Report()
        report.add(skipped("istioctl-routes", "istioctl", f"pod/{target.name}",
                           f"istioctl proxy-config routes refused (needs {denied.permission}); the proxy's "
                           f"routes cannot be read without it: `kubectl mesh describe {target.name} -n {namespace}` "
                           "shows the VirtualService routes from the namespace's objects", denied))
        report.data["routes"] = None
        report.data.update(target.document())
        return report
    rows = parse_routes(text, carry_name=False)
    report = Report(text=([target.note, ""] if target.note else []) + text.rstrip("\n").splitlines())
    report.add(*checks_from_routes(Target(target.source or f"pod/{target.name}", target.name), rows))
    report.data["routes"] = rows
    report.data.update(target.document())
    return report
