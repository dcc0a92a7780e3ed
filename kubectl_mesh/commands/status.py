"""`status`: one screen per namespace.

Injection label, pods meshed of total (those lacking the sidecar in a
labelled namespace counted apart), the effective mTLS mode, canaries
(service, subsets with weights and ready pods), circuit breakers (service,
limits) and the count of `diagnose` findings. One batched read of the
cluster; `-o json` gives the same as data.
"""

from __future__ import annotations

import click

from kubectl_mesh import errors
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command
from kubectl_mesh.report import Report
from kubectl_mesh.text import command as shell

LABEL_WIDTH = 18


def peer_authentications(snapshot, ns: str) -> list[dict]:
    """The namespace's PeerAuthentications, as `mtls status` lists them."""
    from kubectl_mesh import mtls

    return [
        {"name": p["metadata"]["name"],
         "selector": ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {},
         "mode": mtls.policy_mode(p) or "UNSET",
         "portLevelMtls": {str(k): (v or {}).get("mode") for k, v in
                           ((p.get("spec") or {}).get("portLevelMtls") or {}).items()}}
        for p in snapshot.of_kind("PeerAuthentication", ns)
    ]


def namespace_screen(snapshot, ns: str, tally: dict) -> dict:
    """The namespace's state (kubectl_mesh.shapes) with its workloads, canaries, circuit
    breakers, PeerAuthentications and the count of its findings."""
    from kubectl_mesh import shapes

    istio = snapshot.istio_crds is not False
    state = shapes.namespace_state(snapshot, ns, with_workloads=True)
    state["canaries"] = shapes.canaries(snapshot, ns) if istio else []
    state["circuitBreakers"] = shapes.circuit_breakers(snapshot, ns) if istio else []
    state["peerAuthentications"] = peer_authentications(snapshot, ns) if istio else []
    state["findings"] = tally
    state["unreadable"] = unreadable_info(snapshot, ns)
    return state


def unreadable_info(snapshot, ns: str) -> list[dict]:
    """What this user could not read for the namespace's screen, with the permission it needs."""
    return [{**d.as_dict(), "permission": d.permission} for (_, where), d in sorted(
        snapshot.denied.items(), key=lambda item: item[1].permission) if where in (ns, None, snapshot.root_namespace)]


def render_screen(screen: dict) -> list[str]:
    from kubectl_mesh import english

    def row(label: str, value: str) -> str:
        return f"  {label + ':':<{LABEL_WIDTH}}{value}"

    ns = screen["name"]
    lines = [f"Namespace {ns}"]
    injection = screen["injection"]
    labels = ", ".join(f"{k}={v}" for k, v in injection["labels"].items())
    lines.append(row("Injection", {
        "enabled": labels, "revision": labels, "disabled": f"disabled ({labels})",
        "ambient": f"ambient, no sidecars ({labels})", "none": "not labelled",
        "unknown": "unknown (the namespace is not readable)",
    }.get(injection["mode"], injection["mode"])))
    pods = screen["pods"]
    text = f"{pods['meshed']}/{pods['total']} meshed"
    extra = []
    if pods["missingSidecar"]:
        restart = sorted(w["ref"] for w in screen.get("workloads", [])
                         if w["pods"]["missingSidecar"] and w["kind"] != "Pod")
        restart_text = f"; restart {', '.join(restart)}" if restart else ""
        extra.append(f"{pods['missingSidecar']} lacking the sidecar{restart_text}")
    if pods["optedOut"] and injection["mode"] in ("enabled", "revision"):
        extra.append(f"{pods['optedOut']} opted out")
    if pods["proxyNotReady"]:
        extra.append(f"{pods['proxyNotReady']} with istio-proxy not ready")
    lines.append(row("Pods", text + (f" ({'; '.join(extra)})" if extra else "")))
    mtls = screen["mtls"]
    if mtls is None:
        lines.append(row("mTLS", "not checked (Istio's CRDs are not installed)"))
    else:
        workload_policies = [p for p in screen.get("peerAuthentications", []) if p["selector"]]
        overrides = (f"; {english.count(len(workload_policies), 'workload policy')}" if workload_policies else "")
        source = mtls["source"].replace(" (", ", ").replace(")", "")
        if mtls.get("missingPermission"):
            source += f"; needs {_permission(mtls['missingPermission'])}"
        mode = "unknown" if mtls["mode"] == "UNKNOWN" else mtls["mode"]
        lines.append(row("mTLS", f"{mode} ({source}{overrides})"))
    if screen["canaries"]:
        for i, canary in enumerate(screen["canaries"]):
            parts = []
            for subset in canary["subsets"]:
                if subset.get("weight") is None:
                    continue
                role = f"{subset['role']} " if subset.get("role") and subset["role"] != subset["name"] else ""
                parts.append(f"{role}{subset['name']} {subset['percent']:g}% "
                             f"({subset['pods']['ready']}/{subset['pods']['total']} ready)")
            lines.append(row("Canaries" if i == 0 else "", f"{canary['service']}: {', '.join(parts)}"))
    else:
        lines.append(row("Canaries", "none"))
    if screen["circuitBreakers"]:
        for i, breaker in enumerate(screen["circuitBreakers"]):
            limits = " ".join(f"{k}={v}" for k, v in breaker["limits"].items()) or "(none in force)"
            ignored = f"; ignored in {', '.join(breaker['ignored'])}" if breaker["ignored"] else ""
            lines.append(row("Circuit breakers" if i == 0 else "", f"{breaker['service']}: {limits}{ignored}"))
    else:
        lines.append(row("Circuit breakers", "none"))
    tally = screen["findings"]
    total = tally["error"] + tally["warning"] + tally["info"]
    counted = ", ".join([english.count(tally["error"], "error"), english.count(tally["warning"], "warning"),
                         f"{tally['info']} info"])
    diagnose = shell("kubectl", "mesh", "diagnose", ns)
    quiet = f"; {tally['suppressed']} suppressed" if tally.get("suppressed") else ""
    lines.append(row("Findings", f"{counted} ({diagnose}){quiet}" if total else f"none{quiet}"))
    for i, missing in enumerate(screen.get("unreadable") or []):
        label = "Not readable:" if i == 0 else ""
        lines.append(f"  {label:<{LABEL_WIDTH}}needs {missing['permission']}")
    return lines


def _permission(denied: dict) -> str:
    from kubectl_mesh.access import Denied

    return Denied(denied["verb"], denied["resource"], denied.get("namespace"), denied.get("name")).permission


@mesh_command("status", all_namespaces=True, examples=[
    ("kubectl mesh status my-app", "injection, pods meshed, mTLS, canaries, breakers, findings"),
    ("kubectl mesh status -A", "one screen per namespace with pods or Istio configuration"),
    ("kubectl mesh status my-app -o json", ".namespaces[0].mtls.mode, .namespaces[0].canaries[].canary.weight"),
])
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
def command(settings, ns):
    """One screen per namespace: injection, pods meshed of total, mTLS mode,
    canaries with weights and ready pods, circuit breakers, diagnose findings.

    NAMESPACE (or -n, or the context's namespace); -A for every namespace that
    runs pods or has Istio configuration (system namespaces left out).
    """
    from kubectl_mesh import findings, mesh
    from kubectl_mesh.findings import suppress
    from kubectl_mesh.snapshot import DEFAULT_KINDS, read_cluster

    if settings.all_namespaces and (ns or settings.namespace):
        raise errors.UsageError("give a namespace or -A/--all-namespaces, not both")
    runner = settings.runner()
    namespace = None if settings.all_namespaces else settings.resolve_namespace(ns, runner)
    snapshot = read_cluster(runner, namespace=namespace, kinds=(*DEFAULT_KINDS, "Node"))
    if namespace:
        snapshot.ensure_namespace(namespace)
        shown = [namespace]
    else:
        istio_kinds = ("VirtualService", "DestinationRule", "PeerAuthentication")
        busy = {mesh.namespace_of(o) for kind in ("Pod", *istio_kinds) for o in snapshot.of_kind(kind)}
        shown = [n for n in snapshot.namespace_names() if n in busy and not mesh.is_system_namespace(n)]
    # Suppressed as diagnose suppresses them (the galley.istio.io/analyze-suppress annotation on
    # the object): counted apart, so status and diagnose agree on what is left.
    found, suppressed = suppress.split(findings.run(snapshot, namespaces=set(shown)), [], snapshot)
    tallies = {n: {**{level: 0 for level in findings.LEVELS}, "suppressed": 0} for n in shown}
    for finding in found:
        if finding.namespace in tallies:
            tallies[finding.namespace][finding.level] += 1
    for finding, _ in suppressed:
        if finding.namespace in tallies:
            tallies[finding.namespace]["suppressed"] += 1
    screens = [namespace_screen(snapshot, n, tallies[n]) for n in shown]
    report = Report()
    for i, screen in enumerate(screens):
        if i:
            report.text.append("")
        report.text.extend(render_screen(screen))
    if not screens:
        report.text.append("no namespaces with pods or Istio configuration")
    report.data["namespaces"] = screens
    if snapshot.istio_crds is False:
        report.notes.append("note: Istio's CRDs are not installed on this cluster")
    return report
