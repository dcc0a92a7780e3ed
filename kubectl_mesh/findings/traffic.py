"""Traffic shifting and DestinationRules: the guide's steps 3 and 4 and its
"503 errors during canary rollout" row, with istioctl analyze's reference checks."""

from __future__ import annotations

from kubectl_mesh.findings.hosts import EXPORT_ANNOTATION, Host, describe_scopes, to_fqdn
from kubectl_mesh.findings.index import (
    Destination,
    MeshIndex,
    host_namespace,
    short_host,
)
from kubectl_mesh.findings.model import ERROR, INFO, Found, Ref, check, listing, plural
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import name_of, namespace_of
from kubectl_mesh.text import command

ROW_503 = "503 errors during canary rollout"


def pods_phrase(pods: list[dict]) -> str:
    """ "3 pods", or for pods planned from manifests "pod templates of deployment/a, deployment/b". """
    if pods and all(TEMPLATE_OF in p for p in pods):
        return f"pod templates of {listing(sorted({p[TEMPLATE_OF] for p in pods}))}"
    return plural(len(pods), "pod")


def knows_host(index: MeshIndex, fqdn: str) -> bool:
    """Can the snapshot tell whether this host exists (and its DestinationRules)? It
    can when it holds the host's namespace, when it read everything, or when the
    host is declared but not visible where it is used: visibility is a fact."""
    if index.hosts.matching_elsewhere(fqdn):
        return True
    ns = host_namespace(fqdn)
    if ns is not None:
        return index.knows(ns)
    return index.knows_everything


def unconfirmed(index: MeshIndex, fqdn: str) -> str:
    ns = host_namespace(fqdn)
    if index.offline:
        where = f"namespace {ns} is" if ns else "its ServiceEntry is"
        return f" ({where} not among these manifests, so this is unconfirmed; check the cluster)"
    return f" (namespace {ns} was not read; run with -A to confirm)" if ns else \
        " (ServiceEntries of other namespaces were not read; run with -A to confirm)"


def _vs_ref(dest: Destination) -> Ref:
    return Ref("VirtualService", namespace_of(dest.vs), name_of(dest.vs))


def _export_to(vs: dict) -> list[str]:
    value = (vs.get("spec") or {}).get("exportTo")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _lookup(index: MeshIndex, dest: Destination) -> Host | None:
    """The Service or ServiceEntry a destination reaches from its VirtualService, as
    istioctl looks it up: exported to all, to the VirtualService's namespace, or to
    one of the namespaces the VirtualService itself is exported to."""
    return index.hosts.lookup(namespace_of(dest.vs), _export_to(dest.vs), dest.host)


def _verb(dest: Destination) -> str:
    return "mirrors to" if dest.mirror else "routes to"


@check("MESH-TRF-001", "traffic", "Route to a subset no DestinationRule defines", istio="IST0101", guide=ROW_503)
def unknown_subset(index: MeshIndex):
    """A route or mirror names a subset that the host's DestinationRules do not define
    (subsets of several DestinationRules for one host count together, as Istio merges
    them). One finding per destination, as istioctl reports them."""
    for dest in index.destinations:
        if not dest.subset or not dest.host:
            continue
        rules = index.rules_for(dest.fqdn)
        if not rules:
            continue  # MESH-TRF-002
        defined = index.subset_names(dest.fqdn)
        if dest.subset in defined:
            continue
        ns = namespace_of(dest.vs)
        names = ", ".join(f"{namespace_of(r)}/{name_of(r)}" for r in rules)
        yield Found(
            ERROR, _vs_ref(dest),
            f'{dest.where} routes to subset "{dest.subset}" of {short_host(dest.fqdn, ns)}, but no DestinationRule '
            f"for that host defines it ({names} define{'s' if len(rules) == 1 else ''} "
            f"{', '.join(defined) or 'no subsets'}): requests to it fail with 503 (no healthy upstream)",
            f"define subset {dest.subset} (with the labels of its pods) in DestinationRule "
            f"{names.split(', ')[0]}, or route to one of: {', '.join(defined) or '(none defined)'}",
            {"host": dest.fqdn, "subset": dest.subset, "where": [dest.where], "defined": list(defined)},
        )


def knows_rules(index: MeshIndex, fqdn: str) -> bool:
    """Can the snapshot tell that a host has no DestinationRule? Online: when it read
    the host's namespace (or all). Offline: when the manifests carry DestinationRules
    at all; manifests without any are taken as a partial view (the rules may well be
    applied from elsewhere), so the finding is only info."""
    if index.offline:
        return bool(index.snapshot.of_kind("DestinationRule")) and knows_host(index, fqdn)
    return knows_host(index, fqdn)


@check("MESH-TRF-002", "traffic", "Route to a subset of a host with no DestinationRule", istio="IST0101",
       guide=ROW_503)
def subset_without_rule(index: MeshIndex):
    for dest in index.destinations:
        if not dest.subset or not dest.host or index.rules_for(dest.fqdn):
            continue
        ns = namespace_of(dest.vs)
        known = knows_rules(index, dest.fqdn)
        yield Found(
            ERROR if known else INFO, _vs_ref(dest),
            f'{dest.where} routes to subset "{dest.subset}" of {short_host(dest.fqdn, ns)}, but no '
            "DestinationRule for that host exists to define it: requests fail with 503 (no healthy upstream)"
            + ("" if known else unconfirmed(index, dest.fqdn)),
            "create the DestinationRule first (subsets before weights): "
            f"{command('kubectl', 'mesh', 'canary', short_host(dest.fqdn, ns))} ... defines the subsets, "
            "then shifts the weights",
            {"host": dest.fqdn, "subset": dest.subset, "where": [dest.where]},
        )


def _not_visible(index: MeshIndex, dest: Destination) -> str:
    """Why a host that exists is not found from the VirtualService, or ""."""
    elsewhere = index.hosts.matching_elsewhere(to_fqdn(dest.host, namespace_of(dest.vs)))
    if not elsewhere:
        return ""
    entry = elsewhere[0]
    declares = "declares it" if not entry.wildcard else f"matches it ({entry.fqdn})"
    exported = describe_scopes(entry.scopes)
    vs_export = _export_to(dest.vs)
    seen_from = (f"namespace {namespace_of(dest.vs)}" if not vs_export
                 else f"the namespaces the VirtualService is exported to ({', '.join(vs_export)})")
    return f"{entry} {declares} but exports it to {exported}, not to {seen_from}"


@check("MESH-TRF-004", "traffic", "Route to a host that matches no Service or ServiceEntry", istio="IST0101",
       guide=ROW_503)
def unknown_host(index: MeshIndex):
    """A destination (route or mirror) whose host no Service or ServiceEntry visible
    from the VirtualService declares (exportTo counts), whose port the host does not
    expose, or that names no host at all. One finding per destination, as istioctl."""
    unconfirmed_shown: set[tuple] = set()
    for dest in index.destinations:
        ns = namespace_of(dest.vs)
        if not dest.host:
            yield Found(
                ERROR, _vs_ref(dest),
                f"{dest.where} has a destination with no host: Istio rejects the VirtualService",
                "give every destination a host (a Service name, or a ServiceEntry host)",
                {"host": "", "where": [dest.where]},
            )
            continue
        entry = _lookup(index, dest)
        if entry is not None:
            if dest.port is not None and dest.port not in entry.ports:
                yield Found(
                    ERROR, _vs_ref(dest),
                    f"{dest.where} routes to {dest.host} port {dest.port}, but {entry} exposes "
                    f"{'ports ' + ', '.join(map(str, entry.ports)) if entry.ports else 'no ports'}: "
                    "requests fail with 503 (no route to a cluster)",
                    f"route to one of the ports {entry} exposes, or add port {dest.port} to it",
                    {"host": dest.host, "port": dest.port, "ports": list(entry.ports), "where": [dest.where]},
                )
            continue
        fqdn = to_fqdn(dest.host, ns)
        hidden = _not_visible(index, dest)
        known = bool(hidden) or knows_host(index, fqdn)
        if not known:
            # Unconfirmed: one info per VirtualService and host is enough.
            if (dest.vs_key, fqdn) in unconfirmed_shown:
                continue
            unconfirmed_shown.add((dest.vs_key, fqdn))
        host = dest.host if dest.host == fqdn else f"{dest.host} ({fqdn})"
        if hidden:
            problem = f"{hidden}"
            fix = (f"export it where the VirtualService applies (the {EXPORT_ANNOTATION} annotation of a Service, "
                   "spec.exportTo of a ServiceEntry), or move the VirtualService")
        else:
            what = (f"Service {host_namespace(fqdn)}/{fqdn.split('.', 1)[0]}" if host_namespace(fqdn)
                    else f"ServiceEntry for {fqdn}")
            problem = f"there is no {what}"
            fix = (f"correct the destination host (short names resolve in the VirtualService's namespace, {ns}), "
                   "or create the Service (a ServiceEntry for a host outside the cluster)")
        yield Found(
            ERROR if known else INFO, _vs_ref(dest),
            f"{dest.where} {_verb(dest)} {host}, but {problem}: "
            "requests fail with 503 (no route to a cluster)"
            + ("" if known else unconfirmed(index, fqdn)),
            fix,
            {"host": dest.host, "fqdn": fqdn, "where": [dest.where]},
        )


@check("MESH-TRF-007", "traffic", "Route without a port to a host exposing several", istio="IST0112",
       guide=ROW_503)
def port_selector_required(index: MeshIndex):
    """istioctl's VirtualServiceDestinationPortSelectorRequired: a destination with no
    port.number to a Service (or ServiceEntry) that exposes more than one port."""
    for dest in index.destinations:
        if not dest.host or dest.port is not None:
            continue
        entry = _lookup(index, dest)
        if entry is None or len(entry.ports) < 2:
            continue
        ports = ", ".join(map(str, entry.ports))
        yield Found(
            ERROR, _vs_ref(dest),
            f"{dest.where} routes to {dest.host}, which exposes several ports ({ports}), without saying "
            "which: Istio cannot tell which port's traffic the route is for",
            f"add port.number (one of {ports}) to the destination",
            {"host": dest.host, "ports": list(entry.ports), "where": [dest.where]},
        )


@check("MESH-TRF-005", "traffic", "Route weights negative or summing to zero")
def bad_weights(index: MeshIndex):
    """Istio rejects a negative weight, and a route of several destinations whose weights
    sum to zero. (Weights need not sum to 100: each gets weight/total.)"""
    for route in index.routes:
        regular = [d for d in route.destinations if not d.mirror]
        weights = [d.weight for d in regular]
        negative = [d for d in regular if d.weight is not None and d.weight < 0]
        total = sum(w or 0 for w in weights)
        if negative:
            problem = "negative weight " + ", ".join(f"{d.weight} ({d.where})" for d in negative)
        elif len(regular) > 1 and total == 0:
            problem = f"weights {', '.join(str(w or 0) for w in weights)} sum to zero"
        else:
            continue
        vs = route.vs
        yield Found(
            ERROR, Ref("VirtualService", namespace_of(vs), name_of(vs)),
            f"{route.where} has {problem}: Istio rejects the VirtualService, so none of its routes apply",
            "give each destination a weight of 0 or more, at least one above 0 "
            f"(e.g. {command('kubectl', 'mesh', 'canary', short_host(regular[0].fqdn, namespace_of(vs)))} --weight N)",
            {"where": route.where, "weights": weights},
        )
