"""A service's traffic objects as Istio reads them: pure functions over a Snapshot.

- DestinationRules for a host: `spec.host` is resolved in the rule's own
  namespace (a short name such as `my-app` means `my-app.<dr-ns>.svc.cluster.local`),
  and rules for the same host are merged oldest first: subsets are
  concatenated (the first subset of a name wins) and the first rule that has a
  top-level trafficPolicy gives the policy; later ones are silently ignored.
- VirtualServices for a host: `spec.hosts` resolved in the VirtualService's
  namespace; only those bound to the mesh (no `gateways`, or `mesh` among
  them) route sidecar traffic. The first http route without `match` is the
  catch-all route; the canary commands own its destinations for the host.
- Canary roles: which subset is stable and which is the canary, from the
  VirtualService's `kubectl-mesh.io/canary` annotation, or else from the
  subset names `stable` and `canary` as the guide writes them.

Used by canary, circuit-breaker and status; nothing here calls a tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubectl_mesh.mesh import annotations_of, meta, name_of, namespace_of, pod_ready
from kubectl_mesh.snapshot import Snapshot, resolve_host, service_fqdn

MESH_GATEWAY = "mesh"
CANARY_ANNOTATION = "kubectl-mesh.io/canary"
STABLE, CANARY = "stable", "canary"
# The trafficPolicy fields the circuit breaker owns.
BREAKER_FIELDS = ("connectionPool", "outlierDetection")


def _age_key(obj: dict):
    """Istio's order for configs of one kind: oldest first, then namespace and name."""
    return (meta(obj).get("creationTimestamp") or "", namespace_of(obj), name_of(obj))


# -- DestinationRules ---------------------------------------------------------------
def dr_host(dr: dict) -> str:
    """The FQDN a DestinationRule applies to, its short name resolved in its namespace."""
    return resolve_host((dr.get("spec") or {}).get("host") or "", namespace_of(dr))


def destination_rules_for(
    snapshot: Snapshot,
    fqdn: str,
    namespace: str | None = None,
    *,
    include_workload_scoped: bool = False,
) -> list[dict]:
    """DestinationRules whose host is exactly `fqdn`, oldest first (Istio's merge order).

    `namespace` limits the search to one namespace. Rules with a
    workloadSelector apply only to the client workloads they select and are
    not merged with the others; they are left out unless asked for.
    """
    rules = [
        dr
        for dr in snapshot.of_kind("DestinationRule", namespace)
        if dr_host(dr) == fqdn
        and (include_workload_scoped or not (dr.get("spec") or {}).get("workloadSelector"))
    ]
    return sorted(rules, key=_age_key)


def subsets(dr: dict | None) -> list[dict]:
    return list(((dr or {}).get("spec") or {}).get("subsets") or [])


def merged_subsets(rules: list[dict]) -> list[dict]:
    """Subsets of several rules for one host as Istio merges them: concatenated,
    a later subset with a name already seen dropped."""
    seen: set[str] = set()
    result = []
    for dr in rules:
        for subset in subsets(dr):
            name = subset.get("name")
            if name in seen:
                continue
            seen.add(name)
            result.append(subset)
    return result


def subset_named(rules: list[dict] | dict, name: str) -> dict | None:
    rules = [rules] if isinstance(rules, dict) else rules
    return next((s for s in merged_subsets(rules) if s.get("name") == name), None)


def subset_labels(subset: dict | None) -> dict:
    return dict((subset or {}).get("labels") or {})


def subsets_with_labels(rules: list[dict] | dict, labels: dict) -> list[dict]:
    """Subsets whose labels are exactly `labels`."""
    rules = [rules] if isinstance(rules, dict) else rules
    return [s for s in merged_subsets(rules) if subset_labels(s) == labels]


def effective_traffic_policy(rules: list[dict]) -> tuple[dict | None, dict]:
    """(the rule whose top-level trafficPolicy Istio uses, that policy) for merged rules."""
    for dr in rules:
        policy = (dr.get("spec") or {}).get("trafficPolicy")
        if policy:
            return dr, policy
    return None, {}


def circuit_breaker(dr_or_policy: dict | None) -> dict:
    """The circuit-breaker part (connectionPool, outlierDetection) of a rule's
    top-level trafficPolicy (or of a trafficPolicy); {} when there is none."""
    if not dr_or_policy:
        return {}
    policy = dr_or_policy
    if "spec" in dr_or_policy or dr_or_policy.get("kind") == "DestinationRule":
        policy = (dr_or_policy.get("spec") or {}).get("trafficPolicy") or {}
    return {key: policy[key] for key in BREAKER_FIELDS if policy.get(key)}


# -- pods behind a subset --------------------------------------------------------------
def service_selector(service: dict | None) -> dict:
    return dict(((service or {}).get("spec") or {}).get("selector") or {})


def subset_pods(snapshot: Snapshot, service: dict, labels: dict) -> list[dict]:
    """Live pods the Service selects that also carry the subset's labels (topology
    labels may be carried by the pod's node, as Istio matches locality subsets)."""
    wanted = {**service_selector(service), **labels}
    if not wanted:
        return []
    pods = snapshot.select_pods(namespace_of(service), wanted, with_node_labels=True)
    return [
        p for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not meta(p).get("deletionTimestamp")
    ]


def pod_counts(pods: list[dict]) -> dict:
    return {"ready": sum(1 for p in pods if pod_ready(p)), "total": len(pods)}


# -- VirtualServices -------------------------------------------------------------------
def applies_to_mesh(vs: dict) -> bool:
    gateways = (vs.get("spec") or {}).get("gateways")
    return not gateways or MESH_GATEWAY in gateways


def vs_hosts(vs: dict) -> list[str]:
    return [resolve_host(h, namespace_of(vs)) for h in (vs.get("spec") or {}).get("hosts") or []]


def virtual_services_for(
    snapshot: Snapshot, fqdn: str, namespace: str | None = None, *, mesh_only: bool = True
) -> list[dict]:
    """VirtualServices that define routing for `fqdn` (in `hosts`), oldest first."""
    found = [
        vs
        for vs in snapshot.of_kind("VirtualService", namespace)
        if fqdn in vs_hosts(vs) and (applies_to_mesh(vs) or not mesh_only)
    ]
    return sorted(found, key=_age_key)


def destination_fqdn(destination: dict, vs_namespace: str) -> str:
    return resolve_host((destination or {}).get("host") or "", vs_namespace)


def catch_all_index(vs: dict) -> int | None:
    """Index of the first http route without a match: it takes every request the
    routes before it did not; routes after it are never reached."""
    for index, route in enumerate((vs.get("spec") or {}).get("http") or []):
        if not route.get("match"):
            return index
    return None


def route_weights(route: dict, fqdn: str, vs_namespace: str) -> dict[str | None, int]:
    """Weights of the route's destinations for `fqdn`, by subset (None: no subset).
    A lone destination without a weight gets all the traffic (100)."""
    destinations = route.get("route") or []
    weights: dict[str | None, int] = {}
    for item in destinations:
        dest = item.get("destination") or {}
        if destination_fqdn(dest, vs_namespace) != fqdn:
            continue
        weight = item.get("weight")
        if weight is None:
            weight = 100 if len(destinations) == 1 else 0
        subset = dest.get("subset")
        weights[subset] = weights.get(subset, 0) + int(weight)
    return weights


def traffic_shares(route: dict, vs_namespace: str) -> list[dict]:
    """Every destination of a route with its share of requests in percent, as Envoy
    splits them (weights need not sum to 100: each gets weight/sum)."""
    destinations = route.get("route") or []
    raw = []
    for item in destinations:
        dest = item.get("destination") or {}
        weight = item.get("weight")
        if weight is None:
            weight = 100 if len(destinations) == 1 else 0
        raw.append((destination_fqdn(dest, vs_namespace), dest.get("subset"), int(weight)))
    total = sum(w for _, _, w in raw)
    return [
        {"host": host, "subset": subset, "weight": weight,
         "percent": round(100.0 * weight / total, 2) if total > 0 else 0.0}
        for host, subset, weight in raw
    ]


def routed_subsets(vs: dict, fqdn: str) -> dict[str, int]:
    """Every subset of `fqdn` a VirtualService sends traffic to (any route, any match,
    mirrors included), with the largest weight it gets anywhere (mirror: 100)."""
    ns = namespace_of(vs)
    result: dict[str, int] = {}
    for route in (vs.get("spec") or {}).get("http") or []:
        for subset, weight in route_weights(route, fqdn, ns).items():
            if subset:
                result[subset] = max(result.get(subset, 0), weight)
        mirrors = [route.get("mirror")] if route.get("mirror") else []
        mirrors += [m.get("destination") for m in route.get("mirrors") or [] if m.get("destination")]
        for mirror in mirrors:
            if destination_fqdn(mirror, ns) == fqdn and mirror.get("subset"):
                result[mirror["subset"]] = max(result.get(mirror["subset"], 0), 100)
    for section in ("tcp", "tls"):
        for route in (vs.get("spec") or {}).get(section) or []:
            for subset, weight in route_weights(route, fqdn, ns).items():
                if subset:
                    result[subset] = max(result.get(subset, 0), weight)
    return result


# -- canary roles ----------------------------------------------------------------------
def canary_roles(vs: dict | None, fqdn: str | None = None) -> dict | None:
    """{"stable": SUBSET, "canary": SUBSET} for a VirtualService, or None.

    From the `kubectl-mesh.io/canary` annotation the canary command writes;
    for a VirtualService written by hand after the guide, from its catch-all
    route sending this host to subsets named `stable` and `canary`.
    """
    if not vs:
        return None
    raw = annotations_of(vs).get(CANARY_ANNOTATION)
    if raw:
        try:
            roles = json.loads(raw)
        except (TypeError, ValueError):
            roles = None
        if isinstance(roles, dict) and isinstance(roles.get(STABLE), str) and isinstance(roles.get(CANARY), str):
            return {STABLE: roles[STABLE], CANARY: roles[CANARY]}
    index = catch_all_index(vs)
    if index is None or fqdn is None:
        return None
    weights = route_weights(vs["spec"]["http"][index], fqdn, namespace_of(vs))
    if STABLE in weights and CANARY in weights:
        return {STABLE: STABLE, CANARY: CANARY}
    return None


def finished_roles(vs: dict | None) -> dict | None:
    """{"stable": S, "finished": C} when the VirtualService's annotation records that `canary
    finish` made C's version the stable S (no canary now), else None."""
    raw = annotations_of(vs or {}).get(CANARY_ANNOTATION)
    try:
        recorded = json.loads(raw) if raw else None
    except (TypeError, ValueError):
        return None
    if isinstance(recorded, dict) and isinstance(recorded.get(STABLE), str) and \
            isinstance(recorded.get("finished"), str):
        return {STABLE: recorded[STABLE], "finished": recorded["finished"]}
    return None


@dataclass
class CanaryView:
    """A service's canary as it stands: roles, weights and pods behind each subset."""

    service: str
    namespace: str
    host: str
    destination_rules: list[str] = field(default_factory=list)
    virtual_services: list[str] = field(default_factory=list)
    roles: dict | None = None
    weights: dict[str | None, int] = field(default_factory=dict)
    subsets: list[dict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.roles is not None

    def weight_of(self, role: str) -> int | None:
        if not self.roles:
            return None
        return self.weights.get(self.roles[role], 0)

    def as_dict(self) -> dict:
        doc = {
            "service": self.service,
            "namespace": self.namespace,
            "host": self.host,
            "destinationRules": self.destination_rules,
            "virtualServices": self.virtual_services,
            "subsets": self.subsets,
            "weights": {k or "": v for k, v in self.weights.items()},
        }
        if self.roles:
            for role in (STABLE, CANARY):
                doc[role] = {"subset": self.roles[role], "weight": self.weight_of(role)}
        return doc


def canary_view(snapshot: Snapshot, service: dict) -> CanaryView:
    """What `canary status` and `status` show for one Service."""
    ns = namespace_of(service)
    fqdn = service_fqdn(service)
    rules = destination_rules_for(snapshot, fqdn, ns)
    services = virtual_services_for(snapshot, fqdn, ns)
    view = CanaryView(
        service=name_of(service),
        namespace=ns,
        host=fqdn,
        destination_rules=[name_of(d) for d in rules],
        virtual_services=[name_of(v) for v in services],
    )
    vs = services[0] if services else None
    if vs is not None:
        index = catch_all_index(vs)
        if index is not None:
            view.weights = route_weights(vs["spec"]["http"][index], fqdn, ns)
        view.roles = canary_roles(vs, fqdn)
    role_of = {v: k for k, v in (view.roles or {}).items()}
    for subset in merged_subsets(rules):
        labels = subset_labels(subset)
        pods = subset_pods(snapshot, service, labels)
        entry = {
            "name": subset.get("name"),
            "labels": labels,
            "pods": pod_counts(pods),
            "weight": view.weights.get(subset.get("name")),
        }
        if subset.get("name") in role_of:
            entry["role"] = role_of[subset.get("name")]
        view.subsets.append(entry)
    return view


def breaker_view(snapshot: Snapshot, fqdn: str, namespace: str) -> dict:
    """The circuit breaker in force for a host: the rule it comes from and its settings."""
    rules = destination_rules_for(snapshot, fqdn, namespace)
    source, policy = effective_traffic_policy(rules)
    settings = circuit_breaker(policy)
    return {
        "host": fqdn,
        "destinationRules": [name_of(d) for d in rules],
        "source": name_of(source) if source and settings else None,
        "settings": settings,
        "ignored": [
            name_of(d) for d in rules
            if d is not source and circuit_breaker(d)
        ],
    }


def labels_text(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "(no labels)"

