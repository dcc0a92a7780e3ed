"""Traffic shifting and DestinationRules: the guide's steps 3 and 4 and its
"503 errors during canary rollout" row, with istioctl analyze's reference checks."""

from __future__ import annotations

from collections import defaultdict

from kubectl_mesh.findings.index import (
    Destination,
    MeshIndex,
    age_key,
    host_namespace,
    pod_name,
    short_host,
)
from kubectl_mesh.findings.model import ERROR, INFO, WARNING, Found, Ref, check, listing, plural
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import format_labels, name_of, namespace_of
from kubectl_mesh.traffic import effective_traffic_policy

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


@check("MESH-TRF-003", "traffic", "DestinationRule subset selects no pods", istio="IST0173", guide=ROW_503)
def subset_selects_no_pods(index: MeshIndex):
    """A subset's labels, with its Service's selector, select no pods (topology
    labels may come from the pod's node, as Istio does). An error when a route sends
    the subset traffic: that is the guide's 503 during a canary rollout."""
    for fqdn, rules in index.rules_by_host.items():
        service = index.service(fqdn)
        if service is None:
            continue  # a ServiceEntry, a wildcard, or a Service this snapshot does not hold
        behind = index.service_pods(service)
        if behind is None:
            continue  # no selector: endpoints are managed by hand
        svc_ns, svc_name = namespace_of(service), name_of(service)
        svc_selector = (service.get("spec") or {}).get("selector") or {}
        for rule in rules:
            rule_ns = namespace_of(rule)
            for subset in index.subsets(rule):
                labels = subset.get("labels") or {}
                name = subset.get("name", "")
                if index.subset_selects(service, labels):
                    continue
                if behind:
                    planned = all(TEMPLATE_OF in p for p in behind)
                    carry = index.label_values(behind, [k for k in labels if k not in svc_selector])
                    seen = "; ".join(
                        f"{key}=" + ", ".join(value if planned else f"{value} ({count})"
                                              for value, count in counter.most_common())
                        for key, counter in carry.items()
                    )
                    why = (f"selects none of the {pods_phrase(behind)} behind Service {svc_ns}/{svc_name} "
                           f"({format_labels(svc_selector)})" + (f"; they carry {seen}" if seen else ""))
                else:
                    why = f"selects no pods: Service {svc_ns}/{svc_name} ({format_labels(svc_selector)}) has none"
                sending = index.traffic_to_subset.get((fqdn, name), [])
                message = f'subset "{name}" ({format_labels(labels) or "no labels"}) {why}'
                if sending:
                    routes = listing(
                        f"VirtualService {namespace_of(d.vs)}/{name_of(d.vs)} {d.where}"
                        + (f" (weight {d.weight})" if d.weight is not None else "")
                        for d in sending
                    )
                    message += f"; traffic routed to it fails with 503: {routes}"
                    fix = (f"make the pods of subset {name} carry {format_labels(labels)} (in their pod template), "
                           f"or correct the subset's labels in DestinationRule {rule_ns}/{name_of(rule)}; "
                           f"meanwhile route no traffic to it: kubectl mesh canary rollback {svc_name} -n {svc_ns}")
                else:
                    fix = (f"correct the subset's labels in DestinationRule {rule_ns}/{name_of(rule)} to match "
                           f"its pods (kubectl get pods -n {svc_ns} --show-labels), or deploy them before "
                           "routing to it")
                yield Found(
                    ERROR if sending else WARNING, Ref("DestinationRule", rule_ns, name_of(rule)),
                    message, fix,
                    {"subset": name, "labels": labels, "service": f"{svc_ns}/{svc_name}",
                     "podsBehindService": [pod_name(p) for p in behind][:20],
                     "routedBy": [f"{namespace_of(d.vs)}/{name_of(d.vs)} {d.where}" for d in sending]},
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


@check("MESH-TRF-006", "traffic", "Several DestinationRules for one host")
def several_rules_for_host(index: MeshIndex):
    """Istio merges the DestinationRules of one namespace for one host (those without a
    workloadSelector), oldest first: subsets are concatenated, but the top-level
    trafficPolicy is the first one found; any later rule's trafficPolicy is silently
    dropped (a warning). Extra rules that lose nothing are reported as info."""
    for fqdn, rules in index.rules_by_host.items():
        by_ns: dict[str, list[dict]] = defaultdict(list)
        for rule in rules:
            if not (rule.get("spec") or {}).get("workloadSelector"):
                by_ns[namespace_of(rule)].append(rule)
        for ns, group in by_ns.items():
            if len(group) < 2:
                continue
            group.sort(key=age_key)
            names = ", ".join(name_of(r) for r in group)
            source, _ = effective_traffic_policy(group)
            for position, other in enumerate(group):
                policy = (other.get("spec") or {}).get("trafficPolicy") or {}
                lost = sorted(policy) if policy and other is not source else []
                if position == 0:
                    continue  # the oldest: the one the others are merged into
                message = (f"{len(group)} DestinationRules in {ns} for host {short_host(fqdn, ns)} ({names}): "
                           "Istio merges their subsets, oldest first, and keeps one top-level trafficPolicy")
                if lost:
                    message += (f"; this one's trafficPolicy ({', '.join(lost)}) is silently ignored in favour of "
                                f"{ns}/{name_of(source)}'s")
                    level = WARNING
                else:
                    message += ("; nothing of this one is lost, but tools and people that read one rule "
                                "per host will miss it")
                    level = INFO
                first = group[0]
                yield Found(
                    level, Ref("DestinationRule", ns, name_of(other)), message,
                    f"merge it into DestinationRule {ns}/{name_of(first)} and delete it: "
                    f"kubectl delete destinationrule {name_of(other)} -n {ns}"
                    + (f" (kubectl mesh circuit-breaker {short_host(fqdn, ns)} -n {ns} merges settings into the "
                       "existing rule)" if {"connectionPool", "outlierDetection"} & set(lost) else ""),
                    {"host": fqdn, "rules": [name_of(r) for r in group],
                     "trafficPolicyFrom": name_of(source) if source else None, "ignoredTrafficPolicy": lost},
                )
