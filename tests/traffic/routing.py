"""Where a request to a Service goes, from the cluster's objects, as Istio's sidecars send it.

Pure functions over plain objects (no I/O): the simulator reads the objects, this module
turns them into a routing table. Deliberately independent of the plugin's code (a test
tool that shared the plugin's reading of a VirtualService would share its bugs).

- A Service's host is ``NAME.NS.svc.cluster.local``; a VirtualService routes it when a
  ``spec.hosts`` entry resolves to it in the VirtualService's namespace and the
  VirtualService is bound to the mesh (no ``gateways``, or ``mesh`` among them). The oldest
  such VirtualService wins; its first http route without ``match`` takes the traffic.
- Each destination of that route for the host gets ``weight / sum(weights)`` of the requests
  (a lone destination without a weight: all of them); a subset is the DestinationRule
  subset's labels on top of the Service's selector; no subset: every pod of the Service.
- A destination with no ready pod answers 503 from the client's sidecar (``no healthy
  upstream``), reported by the source only.
- Without a VirtualService, requests spread evenly over the Service's ready pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUFFIX = "svc.cluster.local"


@dataclass(frozen=True)
class Backend:
    """A pod's workload as Istio's telemetry names it."""

    workload: str
    namespace: str
    version: str


@dataclass
class Destination:
    share: float  # fraction of the Service's requests, 0..1
    subset: str | None
    backends: list[Backend] = field(default_factory=list)  # one per ready pod (repeats weigh)


@dataclass
class ServiceRoute:
    namespace: str
    name: str
    host: str
    destinations: list[Destination]


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def resolve(host: str, namespace: str) -> str:
    if host.endswith("." + SUFFIX) or host == "*":
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{SUFFIX}"
    if len(parts) == 2:
        return f"{host}.{SUFFIX}"
    return host


def _ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or _meta(pod).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def workload_of(pod: dict, replicasets: dict[tuple[str, str], dict]) -> str:
    """Istio's workload name: the Deployment behind the ReplicaSet, else the owner, else the pod."""
    meta = _meta(pod)
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if not owners:
        return meta.get("name", "")
    owner = owners[0]
    if owner.get("kind") == "ReplicaSet":
        rs = replicasets.get((meta.get("namespace", ""), owner.get("name", "")))
        rs_owners = [o for o in _meta(rs or {}).get("ownerReferences") or [] if o.get("controller")]
        if rs_owners and rs_owners[0].get("kind") == "Deployment":
            return rs_owners[0]["name"]
    return owner.get("name", "")


def version_of(pod: dict) -> str:
    labels = _meta(pod).get("labels") or {}
    return labels.get("version") or labels.get("app.kubernetes.io/version") or "unknown"


def _oldest(objs: list[dict]) -> list[dict]:
    return sorted(objs, key=lambda o: (_meta(o).get("creationTimestamp") or "", _meta(o).get("namespace", ""),
                                       _meta(o).get("name", "")))


def _mesh_bound(vs: dict) -> bool:
    gateways = (vs.get("spec") or {}).get("gateways")
    return not gateways or "mesh" in gateways


def route_table(services: list[dict], pods: list[dict], replicasets: list[dict], virtual_services: list[dict],
                destination_rules: list[dict]) -> list[ServiceRoute]:
    """One ServiceRoute per Service with a selector."""
    rs_index = {(_meta(r).get("namespace", ""), _meta(r).get("name", "")): r for r in replicasets}
    table = []
    for service in services:
        meta = _meta(service)
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        host = f"{name}.{ns}.{SUFFIX}"
        subsets: dict[str, dict] = {}
        for dr in _oldest(destination_rules):
            if resolve((dr.get("spec") or {}).get("host") or "", _meta(dr).get("namespace", "")) != host:
                continue
            for subset in (dr.get("spec") or {}).get("subsets") or []:
                subsets.setdefault(subset.get("name"), subset.get("labels") or {})

        def backends(extra: dict, ns=ns, selector=selector) -> list[Backend]:
            wanted = {**selector, **extra}
            return [Backend(workload_of(p, rs_index), ns, version_of(p)) for p in pods
                    if _meta(p).get("namespace") == ns and _selects(wanted, _meta(p).get("labels") or {})
                    and _ready(p)]

        routes = _catch_all(host, virtual_services)
        if routes is None:
            destinations = [Destination(1.0, None, backends({}))]
        else:
            total = sum(w for _, w in routes)
            destinations = []
            for subset, weight in routes:
                share = weight / total if total else 0.0
                if subset is None:
                    destinations.append(Destination(share, None, backends({})))
                elif subset in subsets:
                    destinations.append(Destination(share, subset, backends(subsets[subset])))
                else:  # an undefined subset: Envoy has no cluster for it
                    destinations.append(Destination(share, subset, []))
        table.append(ServiceRoute(ns, name, host, destinations))
    return table


def _catch_all(host: str, virtual_services: list[dict]) -> list[tuple[str | None, int]] | None:
    """[(subset, weight)] of the winning VirtualService's catch-all route for `host`, or None."""
    for vs in _oldest(virtual_services):
        vs_ns = _meta(vs).get("namespace", "")
        spec = vs.get("spec") or {}
        if not _mesh_bound(vs) or host not in [resolve(h, vs_ns) for h in spec.get("hosts") or []]:
            continue
        for route in spec.get("http") or []:
            if route.get("match"):
                continue
            items = route.get("route") or []
            found = []
            for item in items:
                dest = item.get("destination") or {}
                if resolve(dest.get("host") or "", vs_ns) != host:
                    continue
                weight = item.get("weight")
                found.append((dest.get("subset"), int(weight) if weight is not None else (100 if len(items) == 1
                                                                                            else 0)))
            return found
        return None
    return None
