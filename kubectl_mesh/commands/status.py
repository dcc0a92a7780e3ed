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

LABEL_WIDTH = 18


def injection_info(ns_obj: dict | None) -> dict:
    from kubectl_mesh import mesh

    mode = mesh.injection_mode(ns_obj)
    labels = mesh.injection_labels(ns_obj or {})
    return {"mode": mode, "labels": labels}


def pods_info(snapshot, ns: str) -> dict:
    from kubectl_mesh import inventory

    states = inventory.namespace_pods(snapshot, ns)
    missing = [s for s in states if s.missing_sidecar]
    outside = [s for s in states if not s.has_sidecar and not s.expected]
    return {
        "total": len(states),
        "meshed": sum(1 for s in states if s.has_sidecar),
        "missingSidecar": len(missing),
        "outsideMesh": len(outside),
        "proxyNotReady": sum(1 for s in states if s.has_sidecar and s.proxy_ready is False),
        "restart": sorted({str(s.workload) for s in missing if s.workload and s.workload.restartable}),
        "missingPods": [s.name for s in missing],
    }


def mtls_info(snapshot, ns: str) -> dict:
    from kubectl_mesh import mtls

    effective = mtls.namespace_mode(snapshot, ns)
    workload_policies = [
        p for p in snapshot.of_kind("PeerAuthentication", ns) if not mtls.is_namespace_wide(p)
    ]
    info = {
        "mode": effective.mode,
        "source": effective.source,
        "workloadPolicies": [
            {"name": p["metadata"]["name"], "mode": mtls.policy_mode(p) or "UNSET"} for p in workload_policies
        ],
    }
    if effective.denied is not None:
        info["missingPermission"] = effective.denied.as_dict()
        info["source"] = f"{effective.source}; needs {effective.denied.permission}"
    return info


def unreadable_info(snapshot, ns: str) -> list[dict]:
    """What this user could not read for the namespace's screen, with the permission it needs."""
    return [{**d.as_dict(), "permission": d.permission} for (_, where), d in sorted(
        snapshot.denied.items(), key=lambda item: item[1].permission) if where in (ns, None, snapshot.root_namespace)]


def canaries_info(snapshot, ns: str) -> list[dict]:
    """Services whose VirtualService route splits traffic by weight between subsets."""
    from kubectl_mesh import traffic

    result = []
    for service in snapshot.of_kind("Service", ns):
        view = traffic.canary_view(snapshot, service)
        weighted = {s: w for s, w in view.weights.items() if s}
        if len(weighted) < 2 and not view.roles:
            continue
        total = sum(w for w in view.weights.values() if w > 0)
        doc = view.as_dict()
        for subset in doc["subsets"]:
            weight = subset.get("weight")
            subset["percent"] = round(100.0 * weight / total, 1) if weight and total else 0.0
        result.append(doc)
    return result


def breakers_info(snapshot, ns: str) -> list[dict]:
    """Hosts whose DestinationRule (as Istio merges them) carries a circuit breaker."""
    from kubectl_mesh import traffic

    hosts = []
    for rule in snapshot.of_kind("DestinationRule", ns):
        host = traffic.dr_host(rule)
        if host and host not in hosts:
            hosts.append(host)
    result = []
    for host in hosts:
        view = traffic.breaker_view(snapshot, host, ns)
        if view["settings"] or view["ignored"]:
            view["service"] = host.split(".", 1)[0] if host.endswith(".svc.cluster.local") else host
            view["limits"] = flatten_limits(view["settings"])
            result.append(view)
    return result


# The guide's circuit-breaker fields first, in its order; any others after them.
LIMIT_ORDER = ("maxConnections", "connectTimeout", "http1MaxPendingRequests", "http2MaxRequests",
               "maxRequestsPerConnection", "maxRetries", "consecutive5xxErrors", "consecutiveGatewayErrors",
               "interval", "baseEjectionTime", "maxEjectionPercent")


def flatten_limits(settings: dict) -> dict:
    """{connectionPool: {tcp: {maxConnections: 100}}, ...} -> {"maxConnections": 100, ...}
    for one line, in the guide's order whatever order the API server keeps keys in."""
    flat: dict = {}

    def walk(value, key=None):
        if isinstance(value, dict):
            for k in sorted(value, key=lambda k: (k not in LIMIT_ORDER,
                                                  LIMIT_ORDER.index(k) if k in LIMIT_ORDER else 0, k)):
                walk(value[k], k)
        elif key is not None:
            flat[key] = value

    for section in ("connectionPool", "outlierDetection"):
        pool = settings.get(section) or {}
        for part in ("tcp", "http"):
            if part in pool:
                walk(pool[part])
        walk({k: v for k, v in pool.items() if k not in ("tcp", "http")})
    return flat


def namespace_screen(snapshot, ns: str, tally: dict) -> dict:
    return {
        "namespace": ns,
        "injection": injection_info(snapshot.namespace(ns)) if snapshot.readable("Namespace", ns)
        else {"mode": "unknown", "labels": {}},
        "pods": pods_info(snapshot, ns),
        "mtls": mtls_info(snapshot, ns),
        "canaries": canaries_info(snapshot, ns),
        "circuitBreakers": breakers_info(snapshot, ns),
        "findings": tally,
        "unreadable": unreadable_info(snapshot, ns),
    }


def render_screen(screen: dict) -> list[str]:
    def row(label: str, value: str) -> str:
        return f"  {label + ':':<{LABEL_WIDTH}}{value}"

    ns = screen["namespace"]
    lines = [f"Namespace {ns}"]
    injection = screen["injection"]
    labels = ", ".join(f"{k}={v}" for k, v in injection["labels"].items())
    lines.append(row("Injection", {
        "enabled": labels, "revision": labels, "disabled": f"disabled ({labels})",
        "ambient": f"ambient, no sidecars ({labels})", "none": "not labelled",
        "unknown": "unknown (the namespace is not readable)",
    }[injection["mode"]]))
    pods = screen["pods"]
    text = f"{pods['meshed']}/{pods['total']} meshed"
    extra = []
    if pods["missingSidecar"]:
        restart = f"; restart {', '.join(pods['restart'])}" if pods["restart"] else ""
        extra.append(f"{pods['missingSidecar']} lacking the sidecar{restart}")
    if pods["outsideMesh"] and injection["mode"] in ("enabled", "revision"):
        extra.append(f"{pods['outsideMesh']} opted out")
    if pods["proxyNotReady"]:
        extra.append(f"{pods['proxyNotReady']} with istio-proxy not ready")
    lines.append(row("Pods", text + (f" ({'; '.join(extra)})" if extra else "")))
    mtls = screen["mtls"]
    overrides = f"; {len(mtls['workloadPolicies'])} workload policies" if mtls["workloadPolicies"] else ""
    source = mtls["source"].replace(" (", ", ").replace(")", "")
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
    total = sum(tally.values())
    counted = ", ".join(f"{tally[level]} {level}{'s' if tally[level] != 1 and level != 'info' else ''}"
                        for level in ("error", "warning", "info"))
    lines.append(row("Findings", f"{counted} (kubectl mesh diagnose {ns})" if total else "none"))
    for i, missing in enumerate(screen.get("unreadable") or []):
        label = "Not readable:" if i == 0 else ""
        lines.append(f"  {label:<{LABEL_WIDTH}}needs {missing['permission']}")
    return lines


@mesh_command("status", all_namespaces=True)
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
def command(settings, ns):
    """One screen per namespace: injection, pods meshed of total, mTLS mode,
    canaries with weights and ready pods, circuit breakers, diagnose findings.

    NAMESPACE (or -n, or the context's namespace); -A for every namespace that
    runs pods or has Istio configuration (system namespaces left out).
    """
    from kubectl_mesh import findings, mesh
    from kubectl_mesh.snapshot import DEFAULT_KINDS, read_cluster

    if settings.all_namespaces and (ns or settings.namespace):
        raise errors.UsageError("give a namespace or -A/--all-namespaces, not both")
    runner = settings.runner()
    namespace = None if settings.all_namespaces else settings.resolve_namespace(ns, runner)
    snapshot = read_cluster(runner, namespace=namespace, kinds=(*DEFAULT_KINDS, "Node"))
    if namespace:
        shown = [namespace]
    else:
        istio_kinds = ("VirtualService", "DestinationRule", "PeerAuthentication")
        busy = {mesh.namespace_of(o) for kind in ("Pod", *istio_kinds) for o in snapshot.of_kind(kind)}
        shown = [n for n in snapshot.namespace_names() if n in busy and not mesh.is_system_namespace(n)]
    found = findings.run(snapshot, namespaces=set(shown))
    tallies = {n: {level: 0 for level in findings.LEVELS} for n in shown}
    for finding in found:
        if finding.namespace in tallies:
            tallies[finding.namespace][finding.level] += 1
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
