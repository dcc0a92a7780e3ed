"""DestinationRules: subsets that select no pods (the guide's "503 errors during
canary rollout" row, istioctl analyze's IST0173), hosts that match nothing
(IST0174) and several rules for one host."""

from __future__ import annotations

from collections import defaultdict

from kubectl_mesh.findings.hosts import Host, describe_scopes, to_fqdn
from kubectl_mesh.findings.index import MeshIndex, age_key, host_namespace, pod_name, short_host
from kubectl_mesh.findings.model import ERROR, INFO, WARNING, Found, Ref, check, listing
from kubectl_mesh.findings.traffic import ROW_503, knows_host, pods_phrase, unconfirmed
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import format_labels, name_of, namespace_of
from kubectl_mesh.snapshot import TOPOLOGY_LABELS, service_fqdn
from kubectl_mesh.text import command
from kubectl_mesh.traffic import effective_traffic_policy


def _export_to(rule: dict) -> list[str]:
    value = (rule.get("spec") or {}).get("exportTo")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def rule_host(index: MeshIndex, rule: dict) -> Host | None:
    """The Service or ServiceEntry a DestinationRule's host names, as istioctl looks
    it up from the rule's namespace and exportTo."""
    host = (rule.get("spec") or {}).get("host")
    if not isinstance(host, str) or not host:
        return None
    return index.hosts.lookup(namespace_of(rule), _export_to(rule), host)


@check("MESH-TRF-003", "traffic", "DestinationRule subset selects no pods", istio="IST0173", guide=ROW_503)
def subset_selects_no_pods(index: MeshIndex):
    """A subset's labels, with its Service's selector, select no pods (topology
    labels come from the pod's node, an empty one never matches, as Istio's
    endpoints carry them). An error when a route sends the subset traffic: that is
    the guide's 503 during a canary rollout. istioctl rates every such subset an
    error; one no route uses cannot fail a request yet, so it is a warning here
    (the message says istioctl's level)."""
    for fqdn, rules in index.rules_by_host.items():
        for rule in rules:
            entry = rule_host(index, rule)
            if entry is None or entry.kind != "Service":
                continue  # MESH-TRF-008; a ServiceEntry's endpoints are not pods
            service = index.snapshot.get("Service", entry.namespace, entry.name)
            behind = index.service_pods(service) if service else None
            if behind is None:
                continue  # no selector: endpoints are managed by hand
            yield from _unselecting_subsets(index, fqdn, rule, service, behind)


def _unselecting_subsets(index: MeshIndex, fqdn: str, rule: dict, service: dict, behind: list[dict]):
    svc_ns, svc_name = namespace_of(service), name_of(service)
    svc_selector = (service.get("spec") or {}).get("selector") or {}
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
        empty = sorted(k for k, v in labels.items() if k in TOPOLOGY_LABELS and v == "")
        if empty:
            why += f" (an empty {', '.join(empty)} never matches: Istio does not copy empty locality labels)"
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
                   "meanwhile route no traffic to it: "
                   + command("kubectl", "mesh", "canary", "rollback", svc_name, "-n", svc_ns))
        else:
            message += ("; no route sends it traffic yet, so nothing fails now (istioctl analyze rates this "
                        "an error, IST0173)")
            fix = (f"correct the subset's labels in DestinationRule {rule_ns}/{name_of(rule)} to match "
                   f"its pods ({command('kubectl', 'get', 'pods', '-n', svc_ns, '--show-labels')}), "
                   "or deploy them before routing to it")
        yield Found(
            ERROR if sending else WARNING, Ref("DestinationRule", rule_ns, name_of(rule)),
            message, fix,
            {"subset": name, "labels": labels, "service": f"{svc_ns}/{svc_name}",
             "podsBehindService": [pod_name(p) for p in behind][:20],
             "routedBy": [f"{namespace_of(d.vs)}/{name_of(d.vs)} {d.where}" for d in sending],
             "istioLevel": "error"},
        )


@check("MESH-TRF-008", "traffic", "DestinationRule for a host that matches no Service or ServiceEntry",
       istio="IST0174")
def unknown_rule_host(index: MeshIndex):
    """istioctl's UnknownDestinationRuleHost: the rule's host matches no Service or
    ServiceEntry visible from the rule's namespace (exportTo counts), so the rule
    (a circuit breaker, a subset, a TLS setting) applies to nothing."""
    for rule in index.snapshot.of_kind("DestinationRule"):
        host = (rule.get("spec") or {}).get("host")
        if not isinstance(host, str) or not host or rule_host(index, rule) is not None:
            continue
        ns = namespace_of(rule)
        fqdn = to_fqdn(host, ns)
        ref = Ref("DestinationRule", ns, name_of(rule))
        shown = host if host == fqdn else f"{host} ({fqdn})"
        elsewhere = index.hosts.matching_elsewhere(fqdn)
        if fqdn.startswith("*"):
            covered = [s for s in index.snapshot.of_kind("Service")
                       if service_fqdn(s).endswith(fqdn[1:])]
            if covered:
                yield Found(
                    INFO, ref,
                    f"host {shown} is a wildcard that no ServiceEntry declares: istioctl analyze reports "
                    f"IST0174 (warning) for it, while Istio applies the rule to the Services it covers "
                    f"({listing(f'{namespace_of(s)}/{name_of(s)}' for s in covered)})",
                    "name each Service's host in its own DestinationRule if you want istioctl analyze quiet",
                    {"host": host, "covers": [f"{namespace_of(s)}/{name_of(s)}" for s in covered]},
                )
                continue
        known = bool(elsewhere) or knows_host(index, fqdn)
        if elsewhere:
            why = (f"{elsewhere[0]} declares it but exports it to {describe_scopes(elsewhere[0].scopes)}, "
                   f"not to namespace {ns}")
        else:
            why = f"no Service or ServiceEntry{' visible from namespace ' + ns if not host_namespace(fqdn) else ''} " \
                  "declares it"
        yield Found(
            WARNING if known else INFO, ref,
            f"host {shown} matches no Service or ServiceEntry: {why}; the rule (its traffic policy and "
            "subsets) applies to nothing" + ("" if known else unconfirmed(index, fqdn)),
            "correct spec.host (short names resolve in the rule's namespace; use NAME.NAMESPACE.svc.cluster.local "
            "for a Service elsewhere), or create the ServiceEntry for a host outside the cluster",
            {"host": host, "fqdn": fqdn},
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
                    + command("kubectl", "delete", "destinationrule", name_of(other), "-n", ns)
                    + (f" ({command('kubectl', 'mesh', 'circuit-breaker', short_host(fqdn, ns), '-n', ns)} "
                       "merges settings into the existing rule)"
                       if {"connectionPool", "outlierDetection"} & set(lost) else ""),
                    {"host": fqdn, "rules": [name_of(r) for r in group],
                     "trafficPolicyFrom": name_of(source) if source else None, "ignoredTrafficPolicy": lost},
                )
