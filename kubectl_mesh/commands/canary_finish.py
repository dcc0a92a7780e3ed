"""`canary finish SVC`: the command; the plan and writes are in _canary_finish."""

from __future__ import annotations

import click

from kubectl_mesh import validate
from kubectl_mesh.cluster_names import complete_services
from kubectl_mesh.command import mesh_command
from kubectl_mesh.commands import _service
from kubectl_mesh.commands._canary_finish import apply_finish
from kubectl_mesh.helptext import CONTEXT
from kubectl_mesh.report import Report


@mesh_command("finish", context_settings=CONTEXT, examples=[
    ("kubectl mesh canary finish my-app -n my-app", "after promote --full: the canary becomes the stable"),
    ("kubectl mesh canary finish my-app -n my-app --dry-run", "the three writes, in their order, as diffs"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--force", is_flag=True, help="Finish although the canary does not have all the traffic yet.")
def finish(settings, svc, force):
    """Make the canary the new stable: the stable subset takes the canary's labels, all
    traffic goes to it, and the canary subset is removed.

    Refused (exit 3) until the canary has all the traffic (`canary promote SVC
    --full`) and while it has no ready pod. Writes in an order that never
    routes a request to a subset without ready pods; run it again after an
    interruption to finish what is left.
    """
    svc = validate.dns1123_label(svc, what="service name")
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    report = Report(title=f"Finish the canary of service {svc} in {target.namespace}")
    return apply_finish(report, runner, target, force)


