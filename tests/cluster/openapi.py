"""OpenAPI v3 documents (``/openapi/v3`` and one per group-version).

kubectl needs them for two things: to learn that the server validates fields itself (a
PATCH operation carrying the ``fieldValidation`` parameter for the kind; otherwise kubectl
falls back to client-side validation with ``/openapi/v2`` and fails with "failed to download
openapi"), and for ``kubectl explain``. Custom resources publish their CRD's real schema;
built-in kinds get permissive schemas.

PATCH operations of built-in kinds deliberately do not list
``application/strategic-merge-patch+json``: kubectl then computes ``apply`` patches from its
compiled-in Go types (exact patch metadata) rather than from these permissive schemas.
The server still accepts strategic merge patches for built-in kinds.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from .discovery import KUBE_VERSION
from .registry import Registry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"

_cache: dict[tuple, tuple[bytes, str]] = {}
_lock = threading.Lock()


def definition_name(group: str, version: str, kind: str) -> str:
    if group == "":
        return f"io.k8s.api.core.v1.{kind}"
    if group == "apps":
        return f"io.k8s.api.apps.{version}.{kind}"
    if group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}"
    if group in ("authorization.k8s.io", "rbac.authorization.k8s.io"):
        return f"io.k8s.api.{group.split('.')[0]}.{version}.{kind}"
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str = "query", required: bool = False, desc: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": desc or name,
                         "schema": {"type": "string", "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


_WRITE_PARAMS = [
    _param("dryRun", desc="When present, indicates that modifications should not be persisted."),
    _param("fieldManager", desc="fieldManager is a name associated with the actor or entity that is making these changes."),
    _param("fieldValidation", desc=(
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
        "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict")),
]

_COMMON_SCHEMAS: dict[str, Any] = {
    f"{META}.ObjectMeta": {
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "type": "object",
        "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
            "creationTimestamp": {"type": "string", "format": "date-time"},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
            "deletionTimestamp": {"type": "string", "format": "date-time"},
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                           "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            "generateName": {"type": "string"},
            "generation": {"type": "integer", "format": "int64"},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
            "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "ownerReferences": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge",
            },
            "resourceVersion": {"type": "string"},
            "selfLink": {"type": "string"},
            "uid": {"type": "string"},
        },
    },
    f"{META}.ListMeta": {
        "type": "object",
        "properties": {"continue": {"type": "string"}, "remainingItemCount": {"type": "integer"},
                       "resourceVersion": {"type": "string"}, "selfLink": {"type": "string"}},
    },
    f"{META}.Status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                       "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}]},
    f"{META}.Patch": {"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."},
    f"{META}.DeleteOptions": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "io.k8s.api.autoscaling.v1.Scale": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(f"{META}.ObjectMeta")], "default": {}},
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "format": "int32"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "x-kubernetes-group-version-kind": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}],
    },
}


def _kind_schema(rt: ResourceType, version: str) -> dict[str, Any]:
    gvk = [{"group": rt.group, "kind": rt.kind, "version": version}]
    if rt.is_custom:
        schema = dict(rt.schemas.get(version) or {"type": "object"})
        props = dict(schema.get("properties") or {})
        props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}
        props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}
        props["metadata"] = {"allOf": [_ref(f"{META}.ObjectMeta")], "default": {}}
        schema["properties"] = props
        schema.setdefault("type", "object")
    else:
        schema = {
            "type": "object",
            "description": f"{rt.kind} (permissive schema served by the test API server).",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"allOf": [_ref(f"{META}.ObjectMeta")], "default": {}},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "x-kubernetes-preserve-unknown-fields": True,
        }
    schema["x-kubernetes-group-version-kind"] = gvk
    return schema


def _list_schema(rt: ResourceType, version: str, item_def: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": _ref(item_def)},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(f"{META}.ListMeta")], "default": {}},
        },
        "x-kubernetes-group-version-kind": [{"group": rt.group, "kind": rt.list_kind, "version": version}],
    }


def _ok(schema_ref: str) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(schema_ref)}}},
            "401": {"description": "Unauthorized"}}


def _patch_content(rt: ResourceType) -> dict[str, Any]:
    patch = {"schema": _ref(f"{META}.Patch")}
    return {
        "application/apply-patch+yaml": patch,
        "application/json-patch+json": patch,
        "application/merge-patch+json": patch,
    }


def _paths_for(rt: ResourceType, version: str) -> dict[str, Any]:
    prefix = f"/apis/{rt.group}/{version}" if rt.group else "/api/v1"
    gvk = {"group": rt.group, "version": version, "kind": rt.kind}
    item_def = definition_name(rt.group, version, rt.kind)
    list_def = definition_name(rt.group, version, rt.list_kind)
    ns_part = "/namespaces/{namespace}" if rt.namespaced else ""
    ns_params = [_param("namespace", "path", True, "object name and auth scope, such as for teams and projects")] if rt.namespaced else []
    name_param = _param("name", "path", True, f"name of the {rt.kind}")
    tag = f"{rt.group or 'core'}_{version}"
    paths: dict[str, Any] = {}

    def op(action: str, verb: str, params: list, ref: str, body: bool = False, kind: dict | None = None) -> dict:
        o: dict[str, Any] = {
            "tags": [tag],
            "description": f"{action} {rt.kind}",
            "operationId": f"{action}{rt.kind}",
            "parameters": params,
            "responses": _ok(ref),
            "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": kind or gvk,
        }
        if body:
            o["requestBody"] = {"content": {"*/*": {"schema": _ref(ref)}}, "required": True}
        return o

    paths[f"{prefix}{ns_part}/{rt.plural}"] = {
        "get": op("list", "list", [_param("labelSelector"), _param("fieldSelector"), _param("watch")], list_def),
        "post": op("create", "post", list(_WRITE_PARAMS), item_def, body=True),
        "delete": op("deletecollection", "deletecollection", [_param("labelSelector")], f"{META}.Status"),
        "parameters": ns_params + [_param("pretty")],
    }
    item_path = f"{prefix}{ns_part}/{rt.plural}/{{name}}"
    patch_op = op("patch", "patch", list(_WRITE_PARAMS) + [_param("force")], item_def)
    patch_op["requestBody"] = {"content": _patch_content(rt), "required": True}
    paths[item_path] = {
        "get": op("read", "get", [], item_def),
        "put": op("replace", "put", list(_WRITE_PARAMS), item_def, body=True),
        "patch": patch_op,
        "delete": op("delete", "delete", [], f"{META}.Status"),
        "parameters": [name_param] + ns_params + [_param("pretty")],
    }
    for sub in rt.subresources:
        if sub == "log":
            continue
        sub_gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"} if sub == "scale" else gvk
        ref = "io.k8s.api.autoscaling.v1.Scale" if sub == "scale" else item_def
        sub_patch = op("patch", "patch", list(_WRITE_PARAMS) + [_param("force")], ref, kind=sub_gvk)
        sub_patch["requestBody"] = {"content": _patch_content(rt), "required": True}
        sub_patch["operationId"] = f"patch{rt.kind}{sub.capitalize()}"
        paths[f"{item_path}/{sub}"] = {
            "get": op("read", "get", [], ref, kind=sub_gvk),
            "put": op("replace", "put", list(_WRITE_PARAMS), ref, body=True, kind=sub_gvk),
            "patch": sub_patch,
            "parameters": [name_param] + ns_params + [_param("pretty")],
        }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {
            "get": op("list", "list", [_param("labelSelector"), _param("fieldSelector")], list_def),
            "parameters": [_param("pretty")],
        }
    return paths


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else "api/v1"


def _types_for(registry: Registry, group: str, version: str) -> list[ResourceType]:
    return sorted((rt for rt in registry.all() if rt.group == group and version in rt.versions),
                  key=lambda rt: rt.plural)


def gv_document(registry: Registry, group: str, version: str) -> tuple[bytes, str] | None:
    """(JSON bytes, content hash) of the OpenAPI v3 document for one group-version."""
    types = _types_for(registry, group, version)
    if not types:
        return None
    key = ("v3", group, version, tuple(rt.fingerprint for rt in types))
    with _lock:
        hit = _cache.get(key)
    if hit:
        return hit
    schemas = dict(_COMMON_SCHEMAS)
    paths: dict[str, Any] = {}
    for rt in types:
        item_def = definition_name(group, version, rt.kind)
        schemas[item_def] = _kind_schema(rt, version)
        schemas[definition_name(group, version, rt.list_kind)] = _list_schema(rt, version, item_def)
        paths.update(_paths_for(rt, version))
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    data = json.dumps(doc, separators=(",", ":")).encode()
    digest = hashlib.sha512(data).hexdigest()[:128].upper()
    with _lock:
        _cache[key] = (data, digest)
    return data, digest


def index_document(registry: Registry) -> bytes:
    key = ("v3-index", registry.fingerprint())
    with _lock:
        hit = _cache.get(key)
    if hit:
        return hit[0]
    paths = {}
    for group, versions in registry.groups().items():
        for v in versions:
            built = gv_document(registry, group, v)
            if built:
                gv = _gv_key(group, v)
                paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={built[1]}"}
    data = json.dumps({"paths": dict(sorted(paths.items()))}, separators=(",", ":")).encode()
    with _lock:
        _cache[key] = (data, "")
    return data


def precompute(registry: Registry) -> None:
    """Build every document for this registry now (the first cluster pays, later ones reuse)."""
    index_document(registry)
