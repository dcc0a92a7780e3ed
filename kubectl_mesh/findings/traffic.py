"""Traffic shifting and DestinationRules: the guide's steps 3 and 4 and its
"503 errors during canary rollout" row, with istioctl analyze's reference checks."""

from __future__ import annotations

from collections import defaultdict

from kubectl_mesh.findings.index import (
    Destination,
    MeshIndex,
    host_namespace,
    short_host,
)
from kubectl_mesh.findings.model import ERROR, INFO, Found, Ref, check, listing, plural
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import name_of, namespace_of

ROW_503 = "503 errors during canary rollout"


def pods_phrase(pods: list[dict]) -> str:
    """ "3 pods", or for pods planned from manifests "pod templates of deployment/a, deployment/b". """
    if pods and all(TEMPLATE_OF in p for p in pods):
        return f"pod templates of {listing(sorted({p[TEMPLATE_OF] for p in pods}))}"
    return plural(len(pods), "pod")


def knows_host(index: MeshIndex, fqdn: str) -> bool:
    """Can the snapshot tell whether this host and its DestinationRules exist?"""
    ns = host_namespace(fqdn)
    if ns is not None:
        return index.knows(ns)
    return index.knows_everything or (index.offline and index.service_entry_for(fqdn))


def _unconfirmed(index: MeshIndex, fqdn: str) -> str:
    ns = host_namespace(fqdn)
    if index.offline:
        where = f"namespace {ns} is" if ns else "its ServiceEntry is"
        return f" ({where} not among these manifests, so this is unconfirmed; check the cluster)"
    return f" (namespace {ns} was not read; run with -A to confirm)" if ns else \
        " (ServiceEntries of other namespaces were not read; run with -A to confirm)"


def _by_vs_and_target(destinations) -> dict[tuple, list[Destination]]:
    groups: dict[tuple, list[Destination]] = defaultdict(list)
    for dest in destinations:
        groups[(dest.vs_key, dest.fqdn, dest.subset)].append(dest)
    return groups


def _vs_ref(dest: Destination) -> Ref:
    return Ref("VirtualService", namespace_of(dest.vs), name_of(dest.vs))


def _where(dests: list[Destination]) -> str:
    return ", ".join(d.where for d in dests)


@check("MESH-TRF-001", "traffic", "Route to a subset no DestinationRule defines", istio="IST0101", guide=ROW_503)
def unknown_subset(index: MeshIndex):
    """A route or mirror names a subset that the host's DestinationRules do not define
    (subsets of several DestinationRules for one host count together, as Istio merges them)."""
    for (_, fqdn, subset), dests in _by_vs_and_target(d for d in index.destinations if d.subset).items():
        rules = index.rules_for(fqdn)
        if not rules:
            continue  # MESH-TRF-002
        defined = index.subset_names(fqdn)
        if subset in defined:
            continue
        ns = namespace_of(dests[0].vs)
        names = ", ".join(f"{namespace_of(r)}/{name_of(r)}" for r in rules)
        yield Found(
            ERROR, _vs_ref(dests[0]),
            f'{_where(dests)} routes to subset "{subset}" of {short_host(fqdn, ns)}, but no DestinationRule '
            f"for that host defines it ({names} define{'s' if len(rules) == 1 else ''} "
            f"{', '.join(defined) or 'no subsets'}): requests to it fail with 503 (no healthy upstream)",
            f"define subset {subset} (with the labels of its pods) in DestinationRule {names.split(', ')[0]}, "
            f"or route to one of: {', '.join(defined) or '(none defined)'}",
            {"host": fqdn, "subset": subset, "where": [d.where for d in dests], "defined": list(defined)},
        )


@check("MESH-TRF-002", "traffic", "Route to a subset of a host with no DestinationRule", istio="IST0101",
       guide=ROW_503)
def subset_without_rule(index: MeshIndex):
    for (_, fqdn, subset), dests in _by_vs_and_target(d for d in index.destinations if d.subset).items():
        if index.rules_for(fqdn):
            continue
        ns = namespace_of(dests[0].vs)
        known = knows_host(index, fqdn)
        yield Found(
            ERROR if known else INFO, _vs_ref(dests[0]),
            f'{_where(dests)} routes to subset "{subset}" of {short_host(fqdn, ns)}, but no DestinationRule '
            f"for that host exists to define it: requests fail with 503 (no healthy upstream)"
            + ("" if known else _unconfirmed(index, fqdn)),
            f"create the DestinationRule first (subsets before weights): kubectl mesh canary "
            f"{short_host(fqdn, ns)} ... defines the subsets, then shifts the weights",
            {"host": fqdn, "subset": subset, "where": [d.where for d in dests]},
        )


@check("MESH-TRF-004", "traffic", "Route to a host that matches no Service or ServiceEntry", istio="IST0101",
       guide=ROW_503)
def unknown_host(index: MeshIndex):
    groups: dict[tuple, list[Destination]] = defaultdict(list)
    for dest in index.destinations:
        groups[(dest.vs_key, dest.fqdn)].append(dest)
    for (_, fqdn), dests in groups.items():
        if index.host_exists(fqdn):
            continue
        ns = namespace_of(dests[0].vs)
        known = knows_host(index, fqdn)
        host = dests[0].host if dests[0].host == fqdn else f"{dests[0].host} ({fqdn})"
        what = (f"Service {host_namespace(fqdn)}/{fqdn.split('.', 1)[0]}" if host_namespace(fqdn)
                else f"ServiceEntry for {fqdn}")
        yield Found(
            ERROR if known else INFO, _vs_ref(dests[0]),
            f"{_where(dests)} routes to {host}, but there is no {what}: "
            "requests fail with 503 (no route to a cluster)"
            + ("" if known else _unconfirmed(index, fqdn)),
            f"correct the destination host (short names resolve in the VirtualService's namespace, {ns}), "
            "or create the Service (a ServiceEntry for a host outside the cluster)",
            {"host": dests[0].host, "fqdn": fqdn, "where": [d.where for d in dests]},
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
            f"(e.g. kubectl mesh canary {short_host(regular[0].fqdn, namespace_of(vs))} --weight N)",
            {"where": route.where, "weights": weights},
        )
