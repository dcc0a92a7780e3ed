"""`version`: the plugin's, kubectl's, the cluster's and the Istio control and data planes' versions."""

from __future__ import annotations

import click

from kubectl_mesh import versions
from kubectl_mesh.command import mesh_command
from kubectl_mesh.report import WARN, Report


@mesh_command("version", examples=[
    ("kubectl mesh version", "every version, skew flagged"),
    ("kubectl mesh version -n my-app", "the proxies of one namespace only"),
    ("kubectl mesh version --client", "plugin and kubectl, no cluster"),
    ("kubectl mesh version -o json", ".version.controlPlanes[].version, .version.dataPlane[]"),
])
@click.option("--client", "client_only", is_flag=True, help="Only the plugin's and kubectl's versions; no cluster.")
def command(settings, client_only):
    """Show the plugin's, kubectl's and the cluster's versions, and, where readable,
    each Istio control plane (revision, version istiod runs) and the data plane's
    proxy versions by count, flagging skew, as `istioctl version` does.

    The proxies are counted in all namespaces (-n for one). Exit 0 (warnings
    for skew), 4 when the cluster cannot be reached (the client versions are
    still shown).
    """
    namespace = settings.namespace
    runner = settings.runner()
    doc, checks, error = versions.read(runner, namespace=namespace, client_only=client_only)
    report = Report(text=versions.text_lines(doc))
    report.add(*checks)
    report.data["version"] = doc
    report.error = error  # the cluster out of reach: the client versions are shown, exit 4
    skew = [c for c in checks if c.result == WARN]
    report.summary = ("client versions only" if client_only or error is not None
                      else "version skew: see above" if skew else "no version skew")
    return report
