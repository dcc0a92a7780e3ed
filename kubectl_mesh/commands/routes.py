"""`routes POD`: `istioctl proxy-config routes`, parsed into rows."""

from __future__ import annotations

import click

from kubectl_mesh import errors, validate
from kubectl_mesh.cluster_names import complete_pods
from kubectl_mesh.command import mesh_command
from kubectl_mesh.istioctl_checks import Target, checks_from_routes, routes_args
from kubectl_mesh.report import Report


@mesh_command("routes")
@click.argument("pod", shell_complete=complete_pods)
@click.option("--name", "route_name", metavar="NAME", help="Only the route configuration NAME (e.g. http.8080).")
def command(settings, pod, route_name):
    """Run `istioctl proxy-config routes POD -n NS` and parse its table.

    `-o json` gives one object a row: name, vhostName, domains, match,
    virtualService. A blank NAME in istioctl's table is a route
    configuration without a name (Envoy's own health and stats routes),
    so it stays blank rather than inheriting the row above.
    """
    from kubectl_mesh.istioctl_parse import parse_routes

    validate.resource_name(pod, what="pod name")
    if route_name == "":
        raise errors.UsageError('invalid --name "": give a route configuration name, e.g. http.8080')
    runner = settings.runner()
    namespace = settings.resolve_namespace(None, runner)
    args = routes_args(pod, namespace)
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
        report.add(skipped("istioctl-routes", "istioctl", f"pod/{pod}",
                           f"istioctl proxy-config routes refused (needs {denied.permission}); the proxy's "
                           f"routes cannot be read without it: `kubectl mesh describe {pod} -n {namespace}` "
                           "shows the VirtualService routes from the namespace's objects", denied))
        report.data["routes"] = None
        report.data["pod"] = {"name": pod, "namespace": namespace}
        return report
    rows = parse_routes(text, carry_name=False)
    report = Report(text=text.rstrip("\n").splitlines())
    report.add(*checks_from_routes(Target(f"pod/{pod}", pod), rows))
    report.data["routes"] = rows
    report.data["pod"] = {"name": pod, "namespace": namespace}
    return report
