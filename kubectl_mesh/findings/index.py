"""What several checks look up, computed once per snapshot.

DestinationRules by host, the subsets each host has, ServiceEntry hosts,
every destination of every VirtualService route, the pods behind a Service
(which its subsets select among). Each is built on first use and cached, so
the checks stay small and no check loops over all pods for every subset or route.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property

from kubectl_mesh import inventory, mesh, meshconfig, mtls
from kubectl_mesh.findings.hosts import HostRegistry
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import meta, name_of, namespace_of
from kubectl_mesh.snapshot import CLUSTER_DOMAIN, TOPOLOGY_LABELS, Snapshot, endpoint_labels, resolve_host

ROUTE_KINDS = ("http", "tcp", "tls")
_TOPOLOGY = frozenset(TOPOLOGY_LABELS)
SVC_SUFFIX = f".svc.{CLUSTER_DOMAIN}"


@dataclass(frozen=True)
class Destination:
    """One destination of a VirtualService: a weighted route entry or a mirror."""

    vs: dict
    where: str  # e.g. "http[0].route[1]" or "http[0].mirror"
    host: str  # as written ("" when the destination names none)
    fqdn: str  # resolved in the VirtualService's namespace
    subset: str | None
    weight: int | None
    mirror: bool
    port: int | None = None  # destination.port.number

    @property
    def vs_key(self) -> tuple[str, str]:
        return namespace_of(self.vs), name_of(self.vs)


@dataclass(frozen=True)
class Route:
    """One route of a VirtualService (its destinations share the traffic by weight)."""

    vs: dict
    where: str  # e.g. "http[0]"
    destinations: tuple[Destination, ...]


def age_key(obj: dict):
    """Istio's order among configs of one kind: creation time, then name, then namespace."""
    return (meta(obj).get("creationTimestamp") or "", name_of(obj), namespace_of(obj))


def host_namespace(fqdn: str) -> str | None:
    """The namespace of a Kubernetes service host NAME.NS.svc.cluster.local."""
    if not fqdn.endswith(SVC_SUFFIX):
        return None
    parts = fqdn[: -len(SVC_SUFFIX)].split(".")
    return parts[1] if len(parts) == 2 else None


def short_host(fqdn: str, namespace: str | None = None) -> str:
    """reviews.default.svc.cluster.local -> reviews (in its own namespace) or reviews.default."""
    ns = host_namespace(fqdn)
    if ns is None:
        return fqdn
    name = fqdn.split(".", 1)[0]
    return name if ns == namespace else f"{name}.{ns}"


def pod_name(pod: dict) -> str:
    """A pod's name, or what it stands for when planned from a template."""
    return f"{pod[TEMPLATE_OF]} (pod template)" if TEMPLATE_OF in pod else name_of(pod)


def describe_workloads(states, limit: int = 5) -> str:
    """deployment/web (3 pods), pod/debug: the workloads of some pod states."""
    from kubectl_mesh.findings.model import listing, plural

    parts = []
    for group in inventory.by_workload(states):
        planned = all(TEMPLATE_OF in s.pod for s in group.pods)
        label = str(group.ref) if group.ref.kind != "Pod" else f"pod/{group.ref.name}"
        if not planned and group.ref.kind != "Pod":
            label += f" ({plural(len(group.pods), 'pod')})"
        parts.append(label)
    return listing(parts, limit)


def port_of(destination: dict) -> int | None:
    port = destination.get("port")
    if not isinstance(port, dict) or port.get("number") is None:
        return None
    try:
        return int(port["number"])
    except (TypeError, ValueError):
        return None


def weight_of(destination: dict) -> int | None:
    value = destination.get("weight")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class MeshIndex:
    def __init__(self, snapshot: Snapshot, mesh_settings: meshconfig.MeshSettings | None = None):
        self.snapshot = snapshot
        # Istio's mesh and injector settings: from the manifests' ConfigMaps offline,
        # from what diagnose could read online (possibly unknown).
        self.mesh = mesh_settings if mesh_settings is not None else meshconfig.from_snapshot(snapshot)
        # Results a check module computes once for its several checks.
        self.cache: dict[str, object] = {}

    # -- what the snapshot can tell ---------------------------------------------------
    @property
    def offline(self) -> bool:
        return self.snapshot.source == "manifests"

    @cached_property
    def _declared_namespaces(self) -> set[str]:
        """Namespaces the manifests speak for: with a Service or a Namespace object."""
        names = {namespace_of(s) for s in self.snapshot.of_kind("Service")}
        names.update(name_of(n) for n in self.snapshot.of_kind("Namespace"))
        return names

    def knows(self, namespace: str | None) -> bool:
        """Does the snapshot hold everything of `namespace` (its Services, pods, rules)?

        Online: the namespace was read (or all were). Offline: the manifests
        declare Services (or the Namespace) there; otherwise they are a partial
        view and an absent Service may well exist in the cluster.
        """
        if namespace is None:
            return self.knows_everything
        if self.offline:
            return namespace in self._declared_namespaces
        return self.snapshot.scope is None or self.snapshot.scope == namespace

    @property
    def knows_everything(self) -> bool:
        """Cluster-wide facts (ServiceEntries anywhere): only an all-namespaces read has them."""
        return not self.offline and self.snapshot.scope is None

    # -- namespaces and pods ------------------------------------------------------------
    def namespaces(self) -> list[str]:
        return self._namespaces

    @cached_property
    def _namespaces(self) -> list[str]:
        return self.snapshot.namespace_names()

    @cached_property
    def _states(self) -> dict[str, list[inventory.PodState]]:
        return {}

    @cached_property
    def _bare(self) -> dict[str, list[inventory.PodState]]:
        return {}

    @cached_property
    def _live(self) -> dict[str, list[dict]]:
        return {}

    def live_pods(self, namespace: str) -> list[dict]:
        if namespace not in self._live:
            self._live[namespace] = inventory.live_pods(self.snapshot, namespace)
        return self._live[namespace]

    def pod_states(self, namespace: str) -> list[inventory.PodState]:
        """Every live pod's sidecar state (inventory's, so it means what it means elsewhere)."""
        if namespace not in self._states:
            self._states[namespace] = inventory.namespace_pods(self.snapshot, namespace)
        return self._states[namespace]

    def bare_states(self, namespace: str) -> list[inventory.PodState]:
        """The states of live pods without istio-proxy only: most checks care about those,
        and in a meshed cluster they are few, so the others are not examined one by one.
        A pod planned from manifests in a namespace Istio injects by default will get the
        proxy (the manifests' planner does not know the injector's settings)."""
        if namespace not in self._bare:
            if namespace in self._states:
                bare = [s for s in self._states[namespace] if not s.has_sidecar]
            else:
                ns_obj = self.snapshot.namespace(namespace)
                bare = [inventory.pod_state(self.snapshot, p, ns_obj)
                        for p in self.live_pods(namespace) if not mesh.has_sidecar(p)]
            if self.injected_by_default(namespace):
                bare = [s for s in bare if TEMPLATE_OF not in s.pod or s.opted_out]
            self._bare[namespace] = bare
        return self._bare[namespace]

    def injected_by_default(self, namespace: str) -> bool:
        """No injection label, and Istio's injector injects unlabelled namespaces."""
        ns_obj = self.snapshot.namespace(namespace)
        return (ns_obj is not None and mesh.injection_mode(ns_obj) == "none"
                and bool(self.mesh.enables_namespaces_by_default()))

    def mtls_mode(self, namespace: str, labels: dict):
        """The effective mTLS mode for pods with these labels (cached per label set)."""
        key = (namespace, tuple(sorted(labels.items())))
        cache = self.cache.setdefault("mtls-mode", {})
        if key not in cache:
            cache[key] = mtls.workload_mode(self.snapshot, namespace, labels)
        return cache[key]

    def workload_pod_count(self, ref) -> int:
        return self._workload_counts(ref.namespace)[ref]

    def _workload_counts(self, namespace: str) -> Counter:
        """Live pods per workload in a namespace: counted once, not once per workload asked about."""
        counts = self.cache.setdefault("workload-counts", {})
        if namespace not in counts:
            counts[namespace] = Counter(self.snapshot.workload_of(p) for p in self.live_pods(namespace))
        return counts[namespace]

    # -- services and service entries ---------------------------------------------------
    @cached_property
    def hosts(self) -> HostRegistry:
        """Services and ServiceEntries by the namespaces they are exported to."""
        return HostRegistry(self.snapshot, self.mesh.service_export_to)

    def service(self, fqdn: str) -> dict | None:
        ns = host_namespace(fqdn)
        if ns is None:
            return None
        return self.snapshot.get("Service", ns, fqdn.split(".", 1)[0])

    @cached_property
    def _service_pods(self) -> dict[tuple[str, str], list[dict]]:
        return {}

    def service_pods(self, service: dict) -> list[dict] | None:
        """Pods behind a Service (live, in its namespace), or None when it has no selector."""
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            return None
        key = (namespace_of(service), name_of(service))
        if key not in self._service_pods:
            self._service_pods[key] = self.select(namespace_of(service), selector)
        return self._service_pods[key]

    def select(self, namespace: str, labels: dict) -> list[dict]:
        """Live pods carrying `labels` (topology labels may come from the pod's node)."""
        return [
            p for p in self.snapshot.select_pods(namespace, labels, with_node_labels=True)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not mesh.pod_terminating(p)
        ]

    def subset_selects(self, service: dict, subset_labels: dict) -> bool | None:
        """Does the subset select any pod behind the Service? (None: it has no selector.)

        As selecting the Service's selector merged with the subset's labels would
        tell, but from the Service's pods (selected once, cached, a handful each)
        rather than by a new selection for every subset, stopping at the first."""
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            return None
        wanted = {}
        for key, value in (subset_labels or {}).items():
            if key in selector:
                if selector[key] != value:
                    return False  # the subset contradicts the Service's own selector
                continue  # every pod behind the Service carries it already
            wanted[key] = value
        return any(self._carries(p, wanted) for p in self.service_pods(service))

    def _carries(self, pod: dict, labels: dict) -> bool:
        """Does the pod's endpoint carry every label? Topology labels come from its
        node (snapshot.endpoint_labels, as Istio's endpoint builder adds them)."""
        own = mesh.labels_of(pod)
        if not _TOPOLOGY.isdisjoint(labels):
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = self.snapshot.get("Node", None, node_name) if node_name else None
            if node is None and not self.snapshot.readable("Node"):
                # The user may not read nodes: their labels are unknown, so no finding on a guess.
                return all(own.get(key, value) == value for key, value in labels.items())
            own = endpoint_labels(own, node_name, mesh.labels_of(node) if node else None)
        return all(key in own and own[key] == value for key, value in labels.items())

    @staticmethod
    def label_values(pods: list[dict], keys) -> dict[str, Counter]:
        """For each key, how many of the pods carry each value (for messages)."""
        values: dict[str, Counter] = {}
        for key in keys:
            values[key] = Counter(mesh.labels_of(p).get(key, "<none>") for p in pods)
        return values

    # -- destination rules ----------------------------------------------------------------
    @cached_property
    def rules_by_host(self) -> dict[str, list[dict]]:
        """Resolved host -> its DestinationRules, oldest first (Istio's order)."""
        rules: dict[str, list[dict]] = defaultdict(list)
        for rule in self.snapshot.of_kind("DestinationRule"):
            host = (rule.get("spec") or {}).get("host")
            if host:
                rules[resolve_host(host, namespace_of(rule))].append(rule)
        for items in rules.values():
            items.sort(key=age_key)
        return dict(rules)

    @cached_property
    def _wildcard_rules(self) -> list[tuple[str, dict]]:
        return [(host[1:], rule) for host, rules in self.rules_by_host.items() if host.startswith("*")
                for rule in rules]

    def rules_for(self, fqdn: str) -> list[dict]:
        """The DestinationRules that apply to a host: exact, else wildcard ones."""
        exact = self.rules_by_host.get(fqdn)
        if exact:
            return exact
        return [rule for suffix, rule in self._wildcard_rules if fqdn.endswith(suffix) or suffix == ""]

    @staticmethod
    def subsets(rule: dict) -> list[dict]:
        return [s for s in (rule.get("spec") or {}).get("subsets") or [] if isinstance(s, dict)]

    def subset_names(self, fqdn: str) -> dict[str, dict]:
        """Subset name -> the DestinationRule defining it first (subsets concatenate).
        Cached per host: every route to the host asks. Callers only read it."""
        cache = self.cache.setdefault("subset-names", {})
        if fqdn not in cache:
            names: dict[str, dict] = {}
            for rule in self.rules_for(fqdn):
                for subset in self.subsets(rule):
                    names.setdefault(subset.get("name", ""), rule)
            cache[fqdn] = names
        return cache[fqdn]

    # -- virtual services -------------------------------------------------------------------
    @cached_property
    def routes(self) -> list[Route]:
        found: list[Route] = []
        for vs in self.snapshot.of_kind("VirtualService"):
            ns = namespace_of(vs)
            spec = vs.get("spec") or {}
            for kind in ROUTE_KINDS:
                for i, rule in enumerate(spec.get(kind) or []):
                    if not isinstance(rule, dict):
                        continue
                    where = f"{kind}[{i}]"
                    dests = []
                    # Every destination counts, one without a host too (istioctl reports it).
                    for j, entry in enumerate(rule.get("route") or []):
                        entry = entry if isinstance(entry, dict) else {}
                        dest = entry.get("destination") if isinstance(entry.get("destination"), dict) else {}
                        host = str(dest.get("host") or "")
                        dests.append(Destination(vs, f"{where}.route[{j}]", host, resolve_host(host, ns),
                                                 dest.get("subset"), weight_of(entry), False, port_of(dest)))
                    mirrors = []
                    if kind == "http" and isinstance(rule.get("mirror"), dict):
                        mirrors.append((f"{where}.mirror", rule["mirror"]))
                    for k, entry in enumerate(rule.get("mirrors") or [] if kind == "http" else []):
                        entry = entry if isinstance(entry, dict) else {}
                        mirrors.append((f"{where}.mirrors[{k}]", entry.get("destination")
                                        if isinstance(entry.get("destination"), dict) else {}))
                    for label, dest in mirrors:
                        host = str(dest.get("host") or "")
                        dests.append(Destination(vs, label, host, resolve_host(host, ns), dest.get("subset"),
                                                 None, True, port_of(dest)))
                    found.append(Route(vs, where, tuple(dests)))
        return found

    @cached_property
    def destinations(self) -> list[Destination]:
        return [d for route in self.routes for d in route.destinations]

    @cached_property
    def traffic_to_subset(self) -> dict[tuple[str, str], list[Destination]]:
        """(host fqdn, subset) -> the route destinations that send it traffic (weight > 0)."""
        sending: dict[tuple[str, str], list[Destination]] = defaultdict(list)
        for route in self.routes:
            regular = [d for d in route.destinations if not d.mirror]
            for dest in regular:
                if not dest.subset or not dest.host:
                    continue
                weight = dest.weight
                if weight is None:
                    weight = 100 if len(regular) == 1 else 0
                if weight > 0:
                    sending[(dest.fqdn, dest.subset)].append(dest)
        return dict(sending)
