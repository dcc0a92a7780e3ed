"""Discovery documents: ``/version``, ``/api``, ``/apis``, per group-version resource lists,
and the aggregated form (``apidiscovery.k8s.io/v2``) kubectl 1.32 asks for first.

Documents depend only on the set of resource types, so they are built once per distinct
registry fingerprint and shared by every cluster in the process (as JSON bytes).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .registry import Registry, ResourceType, version_priority

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:58:33Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"]}

# Group order as a real API server lists them (core first, then built-in groups, then CRDs).
_GROUP_ORDER = ["", "apps", "authentication.k8s.io", "authorization.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io"]

_cache: dict[tuple, bytes] = {}
_lock = threading.Lock()


def _cached(key: tuple, build) -> bytes:
    with _lock:
        data = _cache.get(key)
    if data is None:
        data = json.dumps(build(), separators=(",", ":")).encode()
        with _lock:
            _cache[key] = data
    return data


def _sorted_groups(registry: Registry) -> list[tuple[str, list[str]]]:
    groups = registry.groups()

    def order(g: str) -> tuple:
        return (_GROUP_ORDER.index(g), "") if g in _GROUP_ORDER else (len(_GROUP_ORDER), g)

    return [(g, groups[g]) for g in sorted(groups, key=order)]


def _sub_kind(rt: ResourceType, sub: str, version: str) -> tuple[str, str, str]:
    if sub == "scale":
        return ("autoscaling", "v1", "Scale")
    return (rt.group, version, rt.kind)


def _types_in(registry: Registry, group: str, version: str) -> list[ResourceType]:
    return sorted(
        (rt for rt in registry.all() if rt.group == group and version in rt.versions),
        key=lambda rt: rt.plural,
    )


def version_json() -> bytes:
    return json.dumps(KUBE_VERSION).encode()


def api_versions(server_address: str) -> bytes:
    return json.dumps({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }).encode()


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(registry: Registry) -> bytes:
    def build():
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_api_group(g, vs) for g, vs in _sorted_groups(registry) if g],
        }
    return _cached(("groups", registry.fingerprint()), build)


def api_group(registry: Registry, group: str) -> bytes | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return json.dumps({"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}).encode()


def api_resource_list(registry: Registry, group: str, version: str) -> bytes | None:
    types = _types_in(registry, group, version)
    if not types:
        return None

    def build():
        resources = []
        for rt in types:
            resources.append({
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": rt.verbs,
                **({"shortNames": rt.short_names} if rt.short_names else {}),
                **({"categories": rt.categories} if rt.categories else {}),
            })
            for sub in rt.subresources:
                g, v, k = _sub_kind(rt, sub, version)
                entry = {
                    "name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                    "kind": k, "verbs": _SUB_VERBS[sub],
                }
                if sub == "scale":
                    entry.update(group=g, version=v)
                resources.append(entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    return _cached(("resources", group, version, registry.fingerprint()), build)


def _aggregated_resource(rt: ResourceType, version: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": rt.verbs,
    }
    if rt.short_names:
        entry["shortNames"] = rt.short_names
    if rt.categories:
        entry["categories"] = rt.categories
    subs = []
    for sub in rt.subresources:
        g, v, k = _sub_kind(rt, sub, version)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k},
                     "verbs": _SUB_VERBS[sub]})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, legacy: bool, api_version: str = "v2") -> bytes:
    """``/api`` (legacy=True) or ``/apis`` as an APIGroupDiscoveryList."""

    def build():
        items = []
        for group, versions in _sorted_groups(registry):
            if bool(group) == legacy:
                continue
            vs = []
            for v in sorted(versions, key=version_priority):
                vs.append({
                    "version": v,
                    "resources": [_aggregated_resource(rt, v) for rt in _types_in(registry, group, v)],
                    "freshness": "Current",
                })
            meta: dict[str, Any] = {"creationTimestamp": None}
            if group:
                meta["name"] = group
            items.append({"metadata": meta, "versions": vs})
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": f"apidiscovery.k8s.io/{api_version}",
            "metadata": {},
            "items": items,
        }

    return _cached(("aggregated", legacy, api_version, registry.fingerprint()), build)


def wants_aggregated(accept: str) -> str | None:
    """Which aggregated discovery version the Accept header asks for (None: legacy)."""
    for part in accept.split(","):
        params = dict(
            p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p
        )
        if (
            part.strip().startswith("application/json")
            and params.get("g") == "apidiscovery.k8s.io"
            and params.get("as") == "APIGroupDiscoveryList"
            and params.get("v") in ("v2", "v2beta1")
        ):
            return params["v"]
    return None
