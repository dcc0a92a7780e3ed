"""VirtualServices that claim the same host for the mesh gateway (istioctl
analyze's IST0109): routing for that host is undefined, exactly what a canary
leaves behind when someone adds a second VirtualService for the service."""

from __future__ import annotations

from collections import defaultdict

from kubectl_mesh.findings.hosts import ALL, LOCAL, to_fqdn
from kubectl_mesh.findings.index import MeshIndex
from kubectl_mesh.findings.model import ERROR, Found, Ref, check
from kubectl_mesh.findings.traffic import ROW_503
from kubectl_mesh.mesh import name_of, namespace_of

MESH_GATEWAY = "mesh"


def host_matches(a: str, b: str) -> bool:
    """Istio's host.Name.Matches: equal names, or a wildcard covering the other."""
    if a.startswith("*") and b.startswith("*"):
        shorter, longer = (a, b) if len(a) < len(b) else (b, a)
        return longer[1:].endswith(shorter[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def bound_to_mesh(vs: dict) -> bool:
    """No gateways means the mesh gateway (the sidecars); or "mesh" is listed."""
    gateways = (vs.get("spec") or {}).get("gateways") or []
    return not gateways or MESH_GATEWAY in gateways


def host_scopes(vs: dict) -> list[str]:
    """The namespaces whose sidecars see the VirtualService's hosts: "*" when it has
    no exportTo or lists "*", else the namespaces it is exported to ("." its own)."""
    export_to = (vs.get("spec") or {}).get("exportTo") or []
    if not export_to or ALL in export_to:
        return [ALL]
    ns = namespace_of(vs)
    return sorted({ns if e == LOCAL else e for e in export_to if isinstance(e, str)})


def mesh_host_claims(virtual_services) -> dict[tuple[str, str], list[dict]]:
    """(scope, host FQDN) -> the mesh-bound VirtualServices claiming it there."""
    claims: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for vs in virtual_services:
        if not bound_to_mesh(vs):
            continue
        ns = namespace_of(vs)
        for scope in host_scopes(vs):
            for host in (vs.get("spec") or {}).get("hosts") or []:
                if isinstance(host, str) and host:
                    claims[(scope, to_fqdn(host, ns))].append(vs)
    return claims


def conflicts(virtual_services) -> list[tuple[tuple[str, str], list[dict]]]:
    """Each scoped host claimed by more than one VirtualService, as istioctl groups
    them: a host claimed in one namespace also conflicts with the VirtualServices
    exported to all namespaces whose host matches it (wildcards included)."""
    claims = mesh_host_claims(virtual_services)
    found = []
    for (scope, host), claimed in claims.items():
        group = list(claimed)
        if scope != ALL:
            for (other_scope, other_host), others in claims.items():
                if other_scope == ALL and host_matches(host, other_host):
                    group.extend(others)
        if len(group) > 1:
            found.append(((scope, host), group))
    return found


def conflicting_with(planned: dict, others: list[dict]) -> list[dict]:
    """The VirtualServices that `planned`, once created, would claim a host with for
    the mesh gateway (what istioctl analyze would then report, IST0109)."""
    found: list[dict] = []
    for _, group in conflicts([*others, planned]):
        if any(vs is planned for vs in group):
            found.extend(vs for vs in group if vs is not planned and not any(vs is f for f in found))
    return found


def _key(vs: dict) -> tuple[str, str]:
    return namespace_of(vs), name_of(vs)


@check("MESH-TRF-009", "traffic", "Several VirtualServices for one host on the mesh gateway", istio="IST0109",
       guide=ROW_503)
def conflicting_mesh_hosts(index: MeshIndex):
    """Each VirtualService once, with the first conflict found for it; the fix merges
    the routes into one VirtualService (which `kubectl mesh canary` then manages)."""
    reported: set[tuple[str, str]] = set()
    for (scope, host), group in conflicts(index.snapshot.of_kind("VirtualService")):
        names = []
        for vs in group:
            if f"{namespace_of(vs)}/{name_of(vs)}" not in names:
                names.append(f"{namespace_of(vs)}/{name_of(vs)}")
        where = "all namespaces" if scope == ALL else f"namespace {scope}"
        for vs in group:
            if _key(vs) in reported:
                continue
            reported.add(_key(vs))
            others = [n for n in names if n != f"{namespace_of(vs)}/{name_of(vs)}"] or names
            yield Found(
                ERROR, Ref("VirtualService", namespace_of(vs), name_of(vs)),
                f"VirtualServices {', '.join(names)} bound to the mesh gateway all define host {host} "
                f"(as seen from {where}): which one's routes a sidecar uses is undefined, so traffic "
                "may ignore the weights you set",
                f"merge the routes into one VirtualService and delete the other ({', '.join(others)}); "
                "kubectl mesh canary manages the one that remains",
                {"host": host, "scope": scope, "virtualServices": names},
            )
