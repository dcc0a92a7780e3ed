"""The JSON shapes shared by every command's `-o json|yaml` output, defined once.

The same fact has one shape and one path in every command (docs/schema/
describes them; `schemaVersion` says which major version a document
follows). A command builds its document's data from these functions and
never spells one of these shapes itself:

- `namespace_state`: a namespace's mesh state, `{name, injection, mtls, ...}`,
  always under `namespaces[]` (so the mTLS mode is `.namespaces[0].mtls.mode`
  in `status`, `verify`, `mtls`, `enable` and `disable` alike);
- `mtls_mode`: an effective mTLS mode, `{mode, source, ports}`;
- `workload`: a workload with its pods, `{kind, name, namespace, ref, pods: {total, ready, ...}}`;
- `pod_counts`: pods counted, always an object (`pods.total`), never a bare number;
- `canary`: a service's canary as it stands, `{service, ..., stable: {subset, labels,
  weight, pods}, canary: {...}, subsets: [...]}`, in `canary *` and `status`;
- `circuit_breaker`: a host's circuit breaker in force, in `circuit-breaker *` and `status`;
- findings are checks with their finding fields (`kubectl_mesh.findings.model.Finding`).

A document that changes something reports the state the command leaves
the cluster in (after an applied write the requested state, after a refused,
failed or dry run the live one) and, apart, under `requested`, what was asked
for, with the same paths (`.canary.canary.weight` and
`.requested.canary.canary.weight`).

Compatibility: within a schemaVersion fields are added, never renamed or
removed; the shared shapes accept added properties, so a command may carry
more than the schema names.
"""

from __future__ import annotations

from kubectl_mesh import inventory, mesh, mtls, traffic
from kubectl_mesh.snapshot import Snapshot

# The mode a namespace's mTLS has when the policies that decide it could not be read.
UNKNOWN_MODE = "UNKNOWN"


# -- mTLS ------------------------------------------------------------------------------------
def mtls_mode(effective: mtls.Effective | None) -> dict | None:
    """{mode: STRICT|PERMISSIVE|DISABLE|UNKNOWN, source, ports: [{port, mode, source}]}; None
    when the mode is not known at all (Istio not installed)."""
    if effective is None:
        return None
    return effective.as_dict()


def injection(namespace_obj: dict | None) -> dict:
    """{mode: enabled|revision|disabled|ambient|none, labels: {the injection labels present}}."""
    result = {"mode": mesh.injection_mode(namespace_obj),
              "labels": mesh.injection_labels(namespace_obj or {})}
    revision = (namespace_obj and mesh.labels_of(namespace_obj).get(mesh.REVISION_LABEL))
    if result["mode"] == "revision" and revision:
        result["revision"] = revision
    return result


# -- pods and workloads -----------------------------------------------------------------------
def pod_counts(states: list[inventory.PodState]) -> dict:
    """Pods counted: total, ready, meshed (with istio-proxy), missingSidecar (should have it
    and do not: restart their workload), optedOut (sidecar.istio.io/inject=false or host
    network, without a proxy), proxyNotReady."""
    return {
        "total": len(states),
        "ready": sum(1 for s in states if s.ready),
        "meshed": sum(1 for s in states if s.has_sidecar),
        "missingSidecar": sum(1 for s in states if s.missing_sidecar),
        "optedOut": sum(1 for s in states if s.opted_out and not s.has_sidecar),
        "proxyNotReady": sum(1 for s in states if s.has_sidecar and s.proxy_ready is False),
    }


def pods_ready(pods: list[dict]) -> dict:
    """Pods behind a subset, counted the same way as a workload's (total and ready)."""
    return traffic.pod_counts(pods)


def workload_ref(kind: str, namespace: str, name: str) -> dict:
    return {"kind": kind, "name": name, "namespace": namespace, "ref": f"{kind.lower()}/{name}"}


def workload(group: inventory.WorkloadState, *, effective: mtls.Effective | None = None) -> dict:
    """A workload and its pods: counts, the names of those that need something, the
    sidecar layouts in use, and (when given) the workload's effective mTLS mode."""
    ref = group.ref
    states = group.pods
    doc = workload_ref(ref.kind, ref.namespace, ref.name)
    doc["pods"] = pod_counts(states)
    doc["podNames"] = {
        "missingSidecar": [s.name for s in states if s.missing_sidecar],
        "optedOut": [s.name for s in states if s.opted_out and not s.has_sidecar],
        "proxyNotReady": [s.name for s in states if s.has_sidecar and s.proxy_ready is False],
    }
    doc["layout"] = sorted({s.layout for s in states if s.has_sidecar and s.layout})
    if effective is not None:
        doc["mtls"] = mtls_mode(effective)
    return doc


def workload_of(snapshot: Snapshot, obj: dict) -> dict:
    """A Deployment, StatefulSet or DaemonSet read, with its live pods."""
    from kubectl_mesh.snapshot import WorkloadRef

    ref = WorkloadRef(obj.get("kind", ""), mesh.namespace_of(obj), mesh.name_of(obj))
    namespace_obj = snapshot.namespace(ref.namespace)
    group = inventory.WorkloadState(ref, [inventory.pod_state(snapshot, p, namespace_obj)
                                          for p in snapshot.pods_of(obj) if not mesh.pod_terminating(p)])
    return workload(group)


def workloads(snapshot: Snapshot, namespace: str, *, with_mtls: bool = False) -> list[dict]:
    """Every workload of the namespace with live pods (a pod with no owner stands alone)."""
    result = []
    for group in inventory.by_workload(inventory.namespace_pods(snapshot, namespace)):
        effective = None
        if with_mtls and snapshot.istio_crds is not False:
            effective = mtls.workload_mode(snapshot, namespace, mesh.labels_of(group.pods[0].pod))
        result.append(workload(group, effective=effective))
    return result


# -- a namespace --------------------------------------------------------------------------------
def namespace_state(snapshot: Snapshot, namespace: str, *, with_workloads: bool = False,
                    effective: mtls.Effective | None = None) -> dict:
    """A namespace's mesh state: injection, its mTLS mode (None without Istio), its pods
    counted and, with `with_workloads`, its workloads. `effective` overrides the mode read
    from the snapshot (the mode a command leaves in place)."""
    if effective is None and snapshot.istio_crds is not False:
        effective = mtls.namespace_mode(snapshot, namespace)
    readable = getattr(snapshot, "readable", lambda kind, ns: True)
    unreadable = snapshot.namespace(namespace) is None and not readable("Namespace", namespace)
    doc = {
        "name": namespace,
        "injection": {"mode": "unknown", "labels": {}} if unreadable else injection(snapshot.namespace(namespace)),
        "mtls": mtls_mode(effective),
        "pods": pod_counts(inventory.namespace_pods(snapshot, namespace)),
    }
    if with_workloads:
        doc["workloads"] = workloads(snapshot, namespace, with_mtls=snapshot.istio_crds is not False)
    return doc


# -- traffic ----------------------------------------------------------------------------------
class Overlay:
    """A snapshot with some objects replaced by (or added as) the versions a command wrote,
    so a document can show the state the command leaves without reading the cluster again."""

    def __init__(self, base: Snapshot, objects: list[dict]):
        self._base = base
        self._objects = {(o.get("kind"), mesh.namespace_of(o), mesh.name_of(o)): o for o in objects if o}

    def of_kind(self, kind: str, namespace: str | None = None) -> list[dict]:
        replaced = {k: o for k, o in self._objects.items() if k[0] == kind and namespace in (None, k[1])}
        result = []
        for obj in self._base.of_kind(kind, namespace):
            key = (kind, mesh.namespace_of(obj), mesh.name_of(obj))
            result.append(replaced.pop(key, obj))
        return result + list(replaced.values())

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        for (k, ns, n), obj in self._objects.items():
            if k == kind and n == name and (kind == "Namespace" or ns == namespace):
                return obj
        return self._base.get(kind, namespace, name)

    def namespace(self, name: str) -> dict | None:
        return self.get("Namespace", None, name)

    def __getattr__(self, name):
        return getattr(self._base, name)


def state_after(snapshot: Snapshot, namespace: str, written: list[dict] | tuple = (), **kwargs) -> dict:
    """namespace_state with the objects a command wrote in place of those read."""
    return namespace_state(_with(snapshot, written), namespace, **kwargs)


def _with(snapshot: Snapshot, written: list[dict] | tuple = ()) -> Snapshot:
    return Overlay(snapshot, list(written)) if written else snapshot  # type: ignore[return-value]


def canary(snapshot: Snapshot, service: dict, *, written: list[dict] | tuple = ()) -> dict:
    """A service's canary as it stands (with `written` objects in place of those read):

    {service, namespace, host, destinationRules, virtualServices, active,
     stable: {subset, labels, weight, pods: {total, ready}} | None, canary: {...} | None,
     subsets: [{name, role, labels, weight, percent, pods}], weights: {subset: weight}}
    """
    view = traffic.canary_view(_with(snapshot, written), service)
    total = sum(w for w in view.weights.values() if w and w > 0)
    subsets = []
    for entry in view.subsets:
        weight = entry.get("weight")
        subsets.append({
            "name": entry["name"],
            "role": entry.get("role"),
            "labels": entry["labels"],
            "weight": weight,
            "percent": round(100.0 * weight / total, 1) if weight and total else 0.0,
            "pods": entry["pods"],
        })
    by_name = {s["name"]: s for s in subsets}
    doc = {
        "service": view.service,
        "namespace": view.namespace,
        "host": view.host,
        "destinationRules": view.destination_rules,
        "virtualServices": view.virtual_services,
        "active": view.active,
        "stable": None,
        "canary": None,
        "subsets": subsets,
        "weights": {k or "": v for k, v in view.weights.items()},
    }
    roles = dict(view.roles or {})
    if not roles:  # after `canary finish`: the stable subset alone, recorded by the annotation
        vs = next(iter(traffic.virtual_services_for(_with(snapshot, written), view.host, view.namespace)), None)
        finished = traffic.finished_roles(vs)
        if finished:
            roles = {traffic.STABLE: finished[traffic.STABLE]}
            doc["finished"] = finished["finished"]
    for role in (traffic.STABLE, traffic.CANARY):
        if role in roles:
            name = roles[role]
            entry = by_name.get(name)
            doc[role] = {
                "subset": name,
                "labels": entry["labels"] if entry else None,
                "weight": view.weights.get(name, 0),
                "pods": entry["pods"] if entry else {"total": 0, "ready": 0},
            }
    return doc


def requested_canary(chosen: dict, weights: dict) -> dict:
    """What a canary command asked for, in the paths of `canary`: {stable: {subset, labels,
    weight}, canary: {...}} (labels None when the subset was not defined by the command)."""
    return {role: {"subset": chosen[role]["name"], "labels": chosen[role].get("labels"),
                   "weight": weights[role]}
            for role in (traffic.STABLE, traffic.CANARY)}


def circuit_breaker(snapshot: Snapshot, fqdn: str, namespace: str, *, written: list[dict] | tuple = ()) -> dict:
    """The circuit breaker in force for a host: {service, namespace, host, destinationRules,
    source, settings: {connectionPool, outlierDetection}, limits: {flat, in the guide's order},
    ignored: [rules whose breaker Istio ignores]}."""
    view = traffic.breaker_view(_with(snapshot, written), fqdn, namespace)
    suffix = f".{namespace}.svc.cluster.local"
    return {
        "service": fqdn[: -len(suffix)] if fqdn.endswith(suffix) else fqdn,
        "namespace": namespace,
        "host": fqdn,
        "destinationRules": view["destinationRules"],
        "source": view["source"],
        "settings": view["settings"],
        "limits": flatten_limits(view["settings"]),
        "ignored": view["ignored"],
    }


def circuit_breakers(snapshot: Snapshot, namespace: str) -> list[dict]:
    """Every host of the namespace whose DestinationRules (as Istio merges them) carry a breaker."""
    hosts: list[str] = []
    for rule in snapshot.of_kind("DestinationRule", namespace):
        host = traffic.dr_host(rule)
        if host and host not in hosts:
            hosts.append(host)
    found = [circuit_breaker(snapshot, host, namespace) for host in hosts]
    return [b for b in found if b["settings"] or b["ignored"]]


def canaries(snapshot: Snapshot, namespace: str) -> list[dict]:
    """Services of the namespace whose VirtualService splits traffic between subsets by
    weight, or that carry a stable/canary split."""
    result = []
    for service in snapshot.of_kind("Service", namespace):
        doc = canary(snapshot, service)
        weighted = [s for s in doc["weights"] if s]
        if len(weighted) >= 2 or doc["active"]:
            result.append(doc)
    return result


# The guide's circuit-breaker fields first, in its order; any others after them.
LIMIT_ORDER = ("maxConnections", "connectTimeout", "http1MaxPendingRequests", "http2MaxRequests",
               "maxRequestsPerConnection", "maxRetries", "consecutive5xxErrors", "consecutiveGatewayErrors",
               "interval", "baseEjectionTime", "maxEjectionPercent")


def flatten_limits(settings: dict) -> dict:
    """{connectionPool: {tcp: {maxConnections: 100}}, ...} -> {"maxConnections": 100, ...}
    for one line, in the guide's order whatever order the API server keeps keys in.

    A field keeps its own name unless that name would stand for two fields: those of a
    nested object are named with its name (`tcpKeepalive.interval`, not to be taken for
    outlier detection's `interval`), and a field set both for tcp and http keeps its
    part (`tcp.idleTimeout`, `http.idleTimeout`)."""
    flat: dict = {}

    def ordered(value: dict):
        return sorted(value, key=lambda k: (k not in LIMIT_ORDER, LIMIT_ORDER.index(k) if k in LIMIT_ORDER else 0, k))

    def walk(value: dict, prefix: str = ""):
        for k in ordered(value):
            if isinstance(value[k], dict):
                walk(value[k], f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = value[k]

    for section in ("connectionPool", "outlierDetection"):
        pool = settings.get(section) or {}
        if not isinstance(pool, dict):
            continue
        parts = {part: pool[part] for part in ("tcp", "http") if isinstance(pool.get(part), dict)}
        both = set.intersection(*(set(p) for p in parts.values())) if len(parts) == 2 else set()
        for part, fields in parts.items():
            walk({k: v for k, v in fields.items() if k not in both})
            walk({k: v for k, v in fields.items() if k in both}, f"{part}.")
        walk({k: v for k, v in pool.items() if k not in ("tcp", "http")})
    return flat
