"""Pure merges: the new object computed from the existing one, changing only owned fields.

Each function takes the object as read (or None when there is none yet),
never mutates it, and returns the object to write. Everything a merge does
not own (other subsets, routes, matches, retries, timeouts, TLS and
load-balancer settings, labels, annotations, unknown fields) is carried over
as it was, in the same order. Generated objects use the storage versions
`networking.istio.io/v1` and `security.istio.io/v1`; existing objects keep
the version they were read in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from kubectl_mesh import traffic
from kubectl_mesh.snapshot import resolve_host

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"

# Annotations on the pod template that Istio's injector turns into the proxy's resources.
PROXY_CPU = "sidecar.istio.io/proxyCPU"
PROXY_MEMORY = "sidecar.istio.io/proxyMemory"
PROXY_CPU_LIMIT = "sidecar.istio.io/proxyCPULimit"
PROXY_MEMORY_LIMIT = "sidecar.istio.io/proxyMemoryLimit"


def new_object(api_version: str, kind: str, name: str, namespace: str, spec: dict) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _child(parent: dict, key: str) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def set_path(obj: dict, path: Iterable[str], value: Any) -> None:
    """obj[a][b][c] = value, creating the dicts on the way."""
    keys = list(path)
    node = obj
    for key in keys[:-1]:
        node = _child(node, key)
    node[keys[-1]] = value


def get_path(obj: dict, path: Iterable[str]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


# -- PeerAuthentication ------------------------------------------------------------------
def peer_authentication(existing: dict | None, *, namespace: str, mode: str, name: str = "default") -> dict:
    """The namespace-wide PeerAuthentication with `spec.mtls.mode = mode`.

    An existing one (whatever its name) keeps everything else, including its
    port-level settings; a new one has no selector, so it covers the namespace.
    """
    if existing is None:
        return new_object(SECURITY, "PeerAuthentication", name, namespace, {"mtls": {"mode": mode}})
    obj = copy.deepcopy(existing)
    set_path(_spec(obj), ("mtls", "mode"), mode)
    return obj


# -- DestinationRule subsets -------------------------------------------------------------
def destination_rule_subsets(
    existing: dict | None, *, name: str, namespace: str, host: str, wanted: list[dict]
) -> dict:
    """Each wanted subset ({"name", "labels"}) present with exactly those labels.

    A subset of that name keeps its other fields (its own trafficPolicy...);
    a missing one is appended. Other subsets and the trafficPolicy stay.
    """
    if existing is None:
        return new_object(
            NETWORKING, "DestinationRule", name, namespace,
            {"host": host, "subsets": [{"name": w["name"], "labels": dict(w["labels"])} for w in wanted]},
        )
    obj = copy.deepcopy(existing)
    spec = _spec(obj)
    subsets = spec.get("subsets")
    if not isinstance(subsets, list):
        subsets = spec["subsets"] = []
    for want in wanted:
        found = next((s for s in subsets if isinstance(s, dict) and s.get("name") == want["name"]), None)
        if found is None:
            subsets.append({"name": want["name"], "labels": dict(want["labels"])})
        elif found.get("labels") != want["labels"]:
            found["labels"] = dict(want["labels"])
    return obj


# -- VirtualService weights --------------------------------------------------------------
def roles_annotation(roles: dict) -> str:
    return json.dumps({"canary": roles["canary"], "stable": roles["stable"]}, separators=(",", ":"))


def virtual_service_weights(
    existing: dict | None,
    *,
    name: str,
    namespace: str,
    host: str,
    weights: list[tuple[str, int]],
    roles: dict | None = None,
) -> dict:
    """The catch-all http route sends `host` to the given subsets with these weights.

    Only the catch-all route's destinations for this host change: routes with
    matches, other hosts' destinations, and the route's retries, timeout,
    headers, mirror or fault stay. A destination kept keeps its port and
    headers; new ones take the port of the host's existing destination.
    Without a catch-all route one is appended (after every matching route,
    so those still win). `roles` is recorded in the kubectl-mesh.io/canary
    annotation so that promote and rollback know which subset is which.
    """
    fqdn = resolve_host(host, namespace)
    if existing is None:
        obj = new_object(
            NETWORKING, "VirtualService", name, namespace,
            {"hosts": [host], "http": [{"route": [
                {"destination": {"host": host, "subset": subset}, "weight": weight} for subset, weight in weights
            ]}]},
        )
    else:
        obj = copy.deepcopy(existing)
        spec = _spec(obj)
        http = spec.get("http")
        if not isinstance(http, list):
            http = spec["http"] = []
        index = traffic.catch_all_index(obj)
        if index is None:
            http.append({"route": []})
            index = len(http) - 1
        route = http[index]
        route["route"] = _reweighted(route.get("route") or [], fqdn, namespace, host, weights)
    if roles is not None:
        metadata = obj.setdefault("metadata", {})
        annotations = metadata.get("annotations")
        if not isinstance(annotations, dict):
            annotations = metadata["annotations"] = {}
        annotations[traffic.CANARY_ANNOTATION] = roles_annotation(roles)
    return obj


def _reweighted(destinations: list, fqdn: str, namespace: str, host: str, weights: list[tuple[str, int]]) -> list:
    ours = [
        d for d in destinations
        if isinstance(d, dict) and traffic.destination_fqdn(d.get("destination") or {}, namespace) == fqdn
    ]
    template = (ours[0].get("destination") or {}) if ours else {}
    by_subset = {}
    for item in ours:
        by_subset.setdefault((item.get("destination") or {}).get("subset"), item)
    replacement = []
    for subset, weight in weights:
        item = copy.deepcopy(by_subset.get(subset))
        if item is None:
            destination = {"host": template.get("host", host), "subset": subset}
            if "port" in template:
                destination["port"] = copy.deepcopy(template["port"])
            item = {"destination": destination}
        item["weight"] = weight
        replacement.append(item)
    result, placed = [], False
    for item in destinations:
        if any(item is o for o in ours):
            if not placed:
                result.extend(replacement)
                placed = True
            continue
        result.append(item)
    if not placed:
        result.extend(replacement)
    return result


# -- circuit breaker ---------------------------------------------------------------------
# option name -> path under trafficPolicy, in the order the guide writes them.
BREAKER_PATHS: dict[str, tuple[str, ...]] = {
    "max_connections": ("connectionPool", "tcp", "maxConnections"),
    "h2_upgrade_policy": ("connectionPool", "http", "h2UpgradePolicy"),
    "http1_max_pending_requests": ("connectionPool", "http", "http1MaxPendingRequests"),
    "http2_max_requests": ("connectionPool", "http", "http2MaxRequests"),
    "consecutive_5xx": ("outlierDetection", "consecutive5xxErrors"),
    "interval": ("outlierDetection", "interval"),
    "base_ejection_time": ("outlierDetection", "baseEjectionTime"),
    "max_ejection_percent": ("outlierDetection", "maxEjectionPercent"),
}
# The guide's example values.
BREAKER_DEFAULTS: dict[str, Any] = {
    "max_connections": 100,
    "h2_upgrade_policy": "DEFAULT",
    "http1_max_pending_requests": 50,
    "http2_max_requests": 100,
    "consecutive_5xx": 5,
    "interval": "30s",
    "base_ejection_time": "60s",
    "max_ejection_percent": 50,
}


def destination_rule_breaker(
    existing: dict | None,
    *,
    name: str,
    namespace: str,
    host: str,
    settings: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> dict:
    """The top-level trafficPolicy carries these circuit-breaker settings (keys of
    BREAKER_PATHS); `defaults` fill only the fields the rule does not have yet.
    Other connection-pool and outlier fields, TLS, load balancer, port-level
    and subset-level policies stay."""
    obj = (
        new_object(NETWORKING, "DestinationRule", name, namespace, {"host": host})
        if existing is None
        else copy.deepcopy(existing)
    )
    policy = _child(_spec(obj), "trafficPolicy")
    defaults = defaults or {}
    for key, path in BREAKER_PATHS.items():  # the guide's order
        if key in settings:
            set_path(policy, path, settings[key])
        elif key in defaults and get_path(policy, path) is None:
            set_path(policy, path, defaults[key])
    return obj


def remove_breaker(existing: dict | None) -> dict | None:
    """The rule without connectionPool and outlierDetection in its top-level
    trafficPolicy (an emptied trafficPolicy goes too). None when there is no rule."""
    if existing is None:
        return None
    obj = copy.deepcopy(existing)
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("trafficPolicy"), dict):
        return obj
    policy = spec["trafficPolicy"]
    for key in traffic.BREAKER_FIELDS:
        policy.pop(key, None)
    if not policy:
        del spec["trafficPolicy"]
    return obj


# -- pod template annotations ---------------------------------------------------------------
def template_annotations(workload: dict, annotations: dict[str, str]) -> dict:
    """The workload with these annotations on its pod template (others stay)."""
    obj = copy.deepcopy(workload)
    template = _child(_spec(obj), "template")
    current = _child(_child(template, "metadata"), "annotations")
    current.update(annotations)
    return obj


def annotations_patch(workload: dict, annotations: dict[str, str]) -> dict | None:
    """A JSON merge patch setting the annotations that differ, conditional on the
    resourceVersion read; None when the template already has them all."""
    current = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
    changed = {k: v for k, v in annotations.items() if current.get(k) != v}
    if not changed:
        return None
    patch: dict = {"spec": {"template": {"metadata": {"annotations": changed}}}}
    version = (workload.get("metadata") or {}).get("resourceVersion")
    if version:
        patch["metadata"] = {"resourceVersion": version}
    return patch
