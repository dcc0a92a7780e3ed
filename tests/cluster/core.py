"""The API server's semantics, independent of HTTP: CRUD with admission (defaulting,
sidecar injection, validation), optimistic concurrency, garbage collection, CRD
registration, and the hooks that run controllers."""

from __future__ import annotations

import contextlib
import copy
import random
import uuid
from collections.abc import Iterator
from typing import Any

from . import errors
from .controllers import PODS, Controllers, now
from .defaults import apply_defaults, validate_builtin
from .errors import ApiError, cause
from .injection import ISTIO_VERSION, inject, should_inject
from .patch import json_patch, merge_patch, strategic_merge_patch
from .rbac import CLUSTER_ROLES, RBAC_KEYS, Authorizer, aggregate
from .rbac_policy import admit as admit_rbac
from .rbac_policy import bootstrap_objects as rbac_bootstrap_objects
from .registry import Registry, ResourceType, gateway_api_crds, istio_crds, resource_type_from_crd
from .selectors import parse_field_selector, parse_label_selector
from .store import Store
from .validation import (
    OBJECT_META_FIELDS,
    builtin_unknown_fields,
    drop_nulls,
    find_unknown_fields,
    validate_custom_resource,
    validate_metadata,
    validate_name,
)

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

# Media types a PATCH may use.
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class Core:
    def __init__(
        self,
        *,
        native_sidecars: bool = False,
        ready_after: float = 0.0,
        istio_installed: bool = True,
        gateway_api: bool = False,
        istio_revisions: tuple[str, ...] = ("default",),
        proxy_ready: bool = True,
        nodes: int = 1,
        seed: int = 0,
    ) -> None:
        self.native_sidecars = native_sidecars
        self.ready_after = ready_after
        self.istio_installed = istio_installed
        self.gateway_api = gateway_api
        self.istio_revisions = set(istio_revisions) if istio_installed else set()
        self.proxy_ready = proxy_ready
        self.store = Store()
        self.lock = self.store.lock
        self.registry = Registry()
        self.rng = random.Random(seed)
        self.controllers = Controllers(self)
        self.authorizer = Authorizer(self.store)
        self.frozen_pods: set[str] = set()  # pods loaded with an explicit status
        self._depth = 0
        self._ip_counter = 0
        self._cluster_ip_counter = 10
        self._node_rr = 0
        self._bootstrap(nodes)

    # ------------------------------------------------------------------ bootstrap

    def _bootstrap(self, nodes: int) -> None:
        with self.op():
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.internal_create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            self._bootstrap_rbac()
            zones = ["us-west-1a", "us-west-1b", "us-west-1c"]
            for i in range(1, nodes + 1):
                self.internal_create(("", "nodes"), _node(f"node-{i}", zones[(i - 1) % 3], i), keep_status=True)
            self.internal_create(("", "services"), {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            })
            crds = []
            if self.istio_installed:
                crds += istio_crds()
            if self.gateway_api:
                crds += gateway_api_crds()
            for crd, rt in crds:
                self._preload_crd(crd, rt)
            if self.istio_installed:
                self._install_istiod()

    def _bootstrap_rbac(self) -> None:
        # The bootstrap policy, aggregated once per process and shared (the store never mutates it).
        for key, obj in rbac_bootstrap_objects():
            meta = dict(obj["metadata"], uid=self.new_uid(), creationTimestamp=now())
            self.store.put(key, dict(obj, metadata=meta))
        self.authorizer.invalidate()

    def _aggregate_cluster_roles(self) -> None:
        """The clusterrole-aggregation controller: aggregated ClusterRoles follow the roles
        their selectors match, whenever any ClusterRole changes."""
        updates = aggregate(self.store.list(CLUSTER_ROLES))
        for name, rules in sorted(updates.items()):
            cur = self.store.get(CLUSTER_ROLES, "", name)
            if cur is not None:
                self.store.put(CLUSTER_ROLES, dict(cur, rules=rules))
        if updates:
            self.authorizer.invalidate()

    def _preload_crd(self, crd: dict[str, Any], rt: ResourceType) -> None:
        # The parsed CRD spec is shared between clusters (never mutated); metadata is fresh.
        meta = {k: v for k, v in crd["metadata"].items()}
        meta.update(uid=self.new_uid(), creationTimestamp=now(), generation=1)
        obj = {"apiVersion": crd["apiVersion"], "kind": crd["kind"], "metadata": meta,
               "spec": crd["spec"], "status": _crd_status(crd)}
        self.store.put(CRDS, obj)
        self.registry.add(rt)

    def _install_istiod(self) -> None:
        self.internal_create(NAMESPACES, {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "istio-system"},
        })
        for rev in sorted(self.istio_revisions):
            name = "istiod" if rev == "default" else f"istiod-{rev}"
            labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": rev,
                      "app.kubernetes.io/name": "istiod", "app.kubernetes.io/version": ISTIO_VERSION}
            self.internal_create(("apps", "deployments"), {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "istio-system", "labels": dict(labels)},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": rev}},
                    "template": {
                        "metadata": {"labels": dict(labels, **{"sidecar.istio.io/inject": "false"})},
                        "spec": {"containers": [{
                            "name": "discovery", "image": f"docker.io/istio/pilot:{ISTIO_VERSION}",
                            "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                                     "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"},
                                      {"containerPort": 15010, "protocol": "TCP"},
                                      {"containerPort": 15017, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "500m", "memory": "2048Mi"}},
                        }], "serviceAccountName": "istiod"},
                    },
                },
            })
            self.internal_create(("", "services"), {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "istio-system", "labels": dict(labels)},
                "spec": {"selector": {"app": "istiod", "istio.io/rev": rev}, "ports": [
                    {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                    {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                    {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                    {"name": "http-monitoring", "port": 15014, "protocol": "TCP"},
                ]},
            })

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def op(self) -> Iterator[None]:
        """Hold the lock for one API operation; controllers run when the outermost ends."""
        with self.lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._depth += 1
                    try:
                        self.controllers.drain()
                    finally:
                        self._depth -= 1

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def pick_node(self) -> str:
        nodes = self.store.list(("", "nodes"))
        if not nodes:
            return ""
        node = nodes[self._node_rr % len(nodes)]["metadata"]["name"]
        self._node_rr += 1
        return node

    def alloc_pod_ip(self) -> str:
        n = self._ip_counter
        self._ip_counter += 1
        return f"10.244.{n // 250}.{n % 250 + 2}"

    def _alloc_cluster_ip(self) -> str:
        n = self._cluster_ip_counter
        self._cluster_ip_counter += 1
        return f"10.96.{n // 250}.{n % 250 + 1}"

    def view(self, rt: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
        """The object as served in ``version`` (custom resources: apiVersion rewritten)."""
        out = dict(obj)
        out["apiVersion"] = rt.api_version(version)
        out["kind"] = rt.kind
        return out

    def namespace_exists(self, ns: str) -> bool:
        return self.store.get(NAMESPACES, "", ns) is not None

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, version: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self.view(rt, obj, version)

    def list(
        self, rt: ResourceType, version: str, ns: str | None,
        label_selector: str | None = None, field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        match_labels = parse_label_selector(label_selector)
        match_fields = parse_field_selector(field_selector, rt.kind)
        with self.lock:
            items = self.store.list(rt.key, ns if rt.namespaced else None)
            rv = self.store.resource_version
        out = [
            self.view(rt, o, version) for o in items
            if match_labels(o["metadata"].get("labels") or {}) and match_fields(o)
        ]
        return out, rv

    # ------------------------------------------------------------------ decoding checks

    def _check_type(self, rt: ResourceType, version: str, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type object)")
        expected = rt.api_version(version)
        if obj.get("apiVersion") and obj["apiVersion"] != expected:
            raise errors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API version ({expected})"
            )
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise errors.bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({rt.kind})")
        obj["apiVersion"], obj["kind"] = expected, rt.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        obj.setdefault("metadata", {})
        return obj

    def _field_checks(self, rt: ResourceType, version: str, obj: dict[str, Any], mode: str) -> list[str]:
        """Unknown-field handling per ``fieldValidation``; prunes in place, returns warnings."""
        # JSON nulls decode to zero values (omitted) in Go types, and are dropped from custom
        # resources; either way they are not stored (`creationTimestamp: null` in templates...).
        cleaned = drop_nulls(obj)
        obj.clear()
        obj.update(cleaned)
        if rt.is_custom:
            meta = obj.get("metadata") or {}
            unknown = [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
            for path in unknown:
                del meta[path.split(".", 1)[1]]
            unknown += find_unknown_fields(rt.schemas[version], obj, prune=True)
        else:
            unknown = builtin_unknown_fields(rt.kind, obj, prune=True)
        if not unknown or mode == "Ignore":
            return []
        messages = [f'unknown field "{u}"' for u in unknown]
        if mode == "Strict":
            raise errors.bad_request(
                f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {', '.join(messages)}"
            )
        return messages

    def _validate(self, rt: ResourceType, version: str, obj: dict[str, Any], old: dict | None) -> None:
        meta = obj["metadata"]
        causes: list[dict[str, str]] = []
        if old is None:
            causes += validate_name(rt.kind, meta["name"])
        causes += validate_metadata(rt.kind, meta)
        if rt.is_custom:
            body = {k: v for k, v in obj.items() if k != "metadata"}
            causes += validate_custom_resource(rt.fingerprint, version, rt.schemas[version], body)
        else:
            causes += validate_builtin(rt.kind, obj, old)
        if rt.key == CRDS:
            causes += _validate_crd(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes)

    # ------------------------------------------------------------------ writes

    def create(
        self, rt: ResourceType, version: str, ns: str | None, body: Any, *,
        dry_run: bool = False, field_validation: str = "Warn", internal: bool = False,
        keep_status: bool = False, inject_sidecar: bool = True,
    ) -> tuple[dict[str, Any], list[str]]:
        with self.op():
            obj = self._check_type(rt, version, copy.deepcopy(body))
            meta = obj["metadata"]
            if rt.namespaced:
                ns = ns or meta.get("namespace") or "default"
                if meta.get("namespace") and meta["namespace"] != ns:
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request")
                meta["namespace"] = ns
                if not self.namespace_exists(ns):
                    raise errors.not_found("namespaces", "", ns)
            else:
                meta.pop("namespace", None)
                ns = ""
            warnings = [] if internal else self._field_checks(rt, version, obj, field_validation)
            meta = obj["metadata"]  # the checks may have rebuilt it
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = self._generate_name(rt, ns, meta["generateName"])
                else:
                    raise errors.invalid(rt.kind, rt.group, "", [cause(
                        "FieldValueRequired", "metadata.name", "Required value: name or generateName is required")])
            for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation", "selfLink",
                      "managedFields"):
                meta.pop(k, None)
            if "status" in rt.subresources and not keep_status:
                obj.pop("status", None)
            meta["uid"] = self.new_uid()
            meta["creationTimestamp"] = now()
            if rt.has_generation:
                meta["generation"] = 1

            if rt.key == PODS and inject_sidecar:
                obj = self._admit_pod(obj)
                meta = obj["metadata"]
            apply_defaults(rt.kind, obj)
            self._validate(rt, version, obj, None)
            if rt.key in RBAC_KEYS:
                admit_rbac(self.authorizer, self.store, rt.kind, rt.plural, obj, None)
            if self.store.get(rt.key, ns, meta["name"]) is not None:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])

            self._on_create(rt, obj, keep_status)
            obj["apiVersion"] = rt.api_version(rt.storage_version)
            if dry_run:
                return self.view(rt, obj, version), warnings
            stored = self.store.put(rt.key, obj)
            self._after_write(rt, None, stored)
            return self.view(rt, stored, version), warnings

    def update(
        self, rt: ResourceType, version: str, ns: str | None, name: str, body: Any, *,
        subresource: str = "", dry_run: bool = False, field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        ns = ns if rt.namespaced else ""
        with self.op():
            cur = self.store.get(rt.key, ns or "", name)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            if subresource == "scale":
                return self._update_scale(rt, cur, body, dry_run), []
            obj = self._check_type(rt, version, copy.deepcopy(body))
            meta = obj["metadata"]
            if meta.get("name") and meta["name"] != name:
                raise errors.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
            if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            rv = meta.get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            warnings: list[str] = []
            if subresource == "status":
                new = copy.deepcopy(cur)
                new["status"] = obj.get("status")
                if new["status"] is None:
                    new.pop("status")
            else:
                warnings = self._field_checks(rt, version, obj, field_validation)
                new = obj
                new["metadata"]["name"] = name
                if rt.namespaced:
                    new["metadata"]["namespace"] = ns
                if "status" in rt.subresources:
                    if "status" in cur:
                        new["status"] = copy.deepcopy(cur["status"])
                    else:
                        new.pop("status", None)
            return self._commit_update(rt, version, cur, new, dry_run), warnings

    def _commit_update(self, rt: ResourceType, version: str, cur: dict, new: dict, dry_run: bool) -> dict:
        meta = new["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if k in cur["metadata"]:
                meta[k] = cur["metadata"][k]
            else:
                meta.pop(k, None)
        meta.pop("managedFields", None)
        # A pod's nodeName is set by the scheduler and survives client updates.
        if rt.key == ("", "pods") and cur.get("spec", {}).get("nodeName") and isinstance(new.get("spec"), dict):
            new["spec"].setdefault("nodeName", cur["spec"]["nodeName"])
        apply_defaults(rt.kind, new)
        if rt.key == ("", "services"):
            _keep_cluster_ip(cur, new)
        self._validate(rt, version, new, cur)
        if rt.key in RBAC_KEYS:
            admit_rbac(self.authorizer, self.store, rt.kind, rt.plural, new, cur)
        if rt.has_generation and _spec_of(rt, new) != _spec_of(rt, cur):
            meta["generation"] = cur["metadata"].get("generation", 1) + 1
        new["apiVersion"] = rt.api_version(rt.storage_version)
        new["kind"] = rt.kind
        meta["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if new == cur or dry_run:
            # A no-op update does not bump resourceVersion, as on a real server.
            return self.view(rt, new if dry_run else cur, version)
        stored = self.store.put(rt.key, new)
        if rt.key == CRDS:
            self._register_crd(stored)
        self._after_write(rt, cur, stored)
        return self.view(rt, stored, version)

    def patch(
        self, rt: ResourceType, version: str, ns: str | None, name: str, patch_type: str, body: Any, *,
        subresource: str = "", dry_run: bool = False, field_validation: str = "Warn",
        field_manager: str | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        ns = ns if rt.namespaced else ""
        with self.op():
            cur = self.store.get(rt.key, ns or "", name)
            if patch_type == APPLY_PATCH:
                if not field_manager:
                    raise errors.bad_request(
                        "PATCH /apply requires fieldManager to be set (e.g. ?fieldManager=kubectl)")
                if cur is None:
                    return self.create(rt, version, ns, body, dry_run=dry_run, field_validation=field_validation)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            if subresource == "scale":
                base = _scale_of(rt, cur)
            else:
                base = self.view(rt, copy.deepcopy(cur), version)
            if patch_type == JSON_PATCH:
                result = json_patch(base, body)
            elif patch_type == MERGE_PATCH:
                if not isinstance(body, dict):
                    raise errors.bad_request("the server rejected our request due to an error in our request")
                result = merge_patch(base, body)
            elif patch_type == STRATEGIC_PATCH:
                if rt.is_custom:
                    raise errors.unsupported_media_type(patch_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH])
                result = strategic_merge_patch(base, body, rt.kind)
            elif patch_type == APPLY_PATCH:
                # Simplified server-side apply: the applied configuration merged onto the live
                # object (field ownership is not tracked).
                if rt.is_custom:
                    result = merge_patch(base, body)
                else:
                    result = strategic_merge_patch(base, body, rt.kind)
            else:
                raise errors.unsupported_media_type(
                    patch_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
                    + ([] if rt.is_custom else [STRATEGIC_PATCH]))
            if not isinstance(result, dict):
                raise errors.bad_request("the server rejected our request due to an error in our request")
            if subresource == "scale":
                rv = (result.get("metadata") or {}).get("resourceVersion")
                if rv and rv != cur["metadata"]["resourceVersion"]:
                    raise errors.conflict(rt.plural, rt.group, name)
                return self._update_scale(rt, cur, result, dry_run), []
            return self.update(rt, version, ns, name, result, subresource=subresource, dry_run=dry_run,
                               field_validation=field_validation)

    def delete(
        self, rt: ResourceType, version: str, ns: str | None, name: str, *,
        propagation: str | None = None, dry_run: bool = False, preconditions: dict | None = None,
    ) -> dict[str, Any]:
        ns = ns if rt.namespaced else ""
        with self.op():
            cur = self.store.get(rt.key, ns or "", name)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            pre = preconditions or {}
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {errors.qualified(rt.plural, rt.group)} "{name}": '
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {cur['metadata']['resourceVersion']}",
                    name=name, group=rt.group or None, kind=rt.plural)
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {errors.qualified(rt.plural, rt.group)} "{name}": '
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {cur['metadata']['uid']}",
                    name=name, group=rt.group or None, kind=rt.plural)
            if dry_run:
                return self.view(rt, cur, version)
            final = self._delete_cascade(rt, cur, propagation or "Background")
            return self.view(rt, final, version)

    def delete_collection(
        self, rt: ResourceType, version: str, ns: str | None, label_selector: str | None,
        field_selector: str | None, *, propagation: str | None = None, dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        with self.op():
            items, _ = self.list(rt, version, ns, label_selector, field_selector)
            out = []
            for item in items:
                m = item["metadata"]
                out.append(self.delete(rt, version, m.get("namespace"), m["name"],
                                       propagation=propagation, dry_run=dry_run))
            return out

    # ------------------------------------------------------------------ internal writes (controllers)

    def internal_create(self, key: tuple[str, str], obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        rt = self.registry.get(*key)
        assert rt is not None, key
        ns = obj["metadata"].get("namespace")
        version = obj.get("apiVersion", "").rpartition("/")[2] or rt.storage_version
        if version not in rt.versions:
            version = rt.storage_version
        created, _ = self.create(rt, version, ns, obj, internal=True, **kw)
        return self.store.get(key, created["metadata"].get("namespace", ""), created["metadata"]["name"])

    def internal_write(self, key: tuple[str, str], new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        """Store a controller's change (spec, metadata or status) without admission."""
        rt = self.registry.get(*key)
        assert rt is not None, key
        with self.op():
            new = dict(new)
            new["metadata"] = dict(new["metadata"])
            if rt.has_generation and _spec_of(rt, new) != _spec_of(rt, old):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            stored = self.store.put(key, new)
            self._after_write(rt, old, stored)
            return stored

    def internal_delete(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        rt = self.registry.get(*key)
        assert rt is not None, key
        with self.op():
            cur = self.store.get(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if cur is not None:
                self._delete_cascade(rt, cur, "Background")

    # ------------------------------------------------------------------ helpers

    def _generate_name(self, rt: ResourceType, ns: str, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(self.rng.choice(NAME_CHARS) for _ in range(5))
            if self.store.get(rt.key, ns, name) is None:
                return name
        raise errors.internal("could not generate a unique name")

    def _admit_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Mutating admission for pods: Istio's sidecar injector."""
        if not self.istio_installed:
            return pod
        ns = self.store.get(NAMESPACES, "", pod["metadata"]["namespace"])
        labels = (ns or {}).get("metadata", {}).get("labels") or {}
        revision = should_inject(pod, labels, self.istio_revisions)
        if revision is None:
            return pod
        return inject(pod, revision, self.native_sidecars)

    def _on_create(self, rt: ResourceType, obj: dict[str, Any], keep_status: bool) -> None:
        meta = obj["metadata"]
        if rt.key == NAMESPACES:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif rt.key == ("", "services"):
            spec = obj.setdefault("spec", {})
            if spec.get("type") != "ExternalName":
                if not spec.get("clusterIP"):
                    spec["clusterIP"] = self._alloc_cluster_ip()
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
        elif rt.key == PODS:
            if keep_status and obj.get("status"):
                self.frozen_pods.add(meta["uid"])
                obj.setdefault("spec", {}).setdefault("nodeName", self.pick_node())
            else:
                self.controllers.init_pod(obj)
        elif rt.key == CRDS:
            obj["status"] = _crd_status(obj)

    def _after_write(self, rt: ResourceType, old: dict | None, new: dict | None) -> None:
        if rt.key == CRDS and new is not None and old is None:
            self._register_crd(new)
        if rt.key in RBAC_KEYS:
            self.authorizer.invalidate()
            if rt.key == CLUSTER_ROLES:
                self._aggregate_cluster_roles()
        self.controllers.after_write(rt.key, old, new)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        new_rt = resource_type_from_crd(crd)
        for _, rt in istio_crds() + (gateway_api_crds() if self.gateway_api else []):
            if rt.fingerprint == new_rt.fingerprint:
                new_rt = rt  # reuse the shared (cached) definition
        self.registry.add(new_rt)

    def _delete_cascade(self, rt: ResourceType, cur: dict[str, Any], propagation: str) -> dict[str, Any]:
        meta = cur["metadata"]
        ns = meta.get("namespace", "")
        if rt.key == NAMESPACES:
            for other in self.registry.all():
                if other.namespaced:
                    for obj in self.store.list(other.key, meta["name"]):
                        removed = self.store.remove(other.key, meta["name"], obj["metadata"]["name"])
                        if removed is not None:
                            self._after_write(other, removed, None)
        if rt.key == CRDS:
            spec = cur.get("spec") or {}
            key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            for obj in self.store.list(key):
                self.store.remove(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            self.registry.remove(key)
        final = self.store.remove(rt.key, ns, meta["name"])
        if final is None:
            return cur
        self.frozen_pods.discard(meta.get("uid"))
        self._after_write(rt, cur, None)
        # Garbage collection of dependents (ownerReferences to the deleted object).
        uid = meta["uid"]
        for other in self.registry.all():
            scope = ns if other.namespaced and ns else None
            if other.namespaced and not ns:
                continue  # cluster-scoped owners of namespaced objects are not modelled
            for obj in self.store.list(other.key, scope):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if propagation == "Orphan":
                    upd = dict(obj)
                    upd["metadata"] = dict(obj["metadata"], ownerReferences=[r for r in refs if r.get("uid") != uid])
                    if not upd["metadata"]["ownerReferences"]:
                        del upd["metadata"]["ownerReferences"]
                    self.internal_write(other.key, upd, old=obj)
                else:
                    self._delete_cascade(other, obj, propagation)
        return final

    def _update_scale(self, rt: ResourceType, cur: dict[str, Any], body: Any, dry_run: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type object)")
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, cur["metadata"]["name"])
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", cur["metadata"]["name"], [cause(
                "FieldValueInvalid", "spec.replicas",
                f"Invalid value: {replicas}: must be greater than or equal to 0")])
        new = copy.deepcopy(cur)
        new["spec"]["replicas"] = replicas
        if not dry_run and new != cur:
            new["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
            stored = self.store.put(rt.key, new)
            self._after_write(rt, cur, stored)
            cur = self.store.get(rt.key, cur["metadata"].get("namespace", ""), cur["metadata"]["name"])
        return _scale_of(rt, cur if not dry_run else new)

    def scale_view(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        cur = self.store.get(rt.key, ns, name)
        if cur is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return _scale_of(rt, cur)

    def set_proxy_ready(self, ready: bool) -> None:
        with self.op():
            self.proxy_ready = ready
            for pod in self.store.list(PODS):
                names = {c.get("name") for c in (pod.get("spec") or {}).get("containers", [])
                         + (pod.get("spec") or {}).get("initContainers", [])}
                if "istio-proxy" in names:
                    self.controllers.refresh_pod(pod)


# ---------------------------------------------------------------------- module helpers

def _spec_of(rt: ResourceType, obj: dict[str, Any]) -> Any:
    if rt.is_custom or rt.key == CRDS:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return obj.get("spec")


def _keep_cluster_ip(cur: dict, new: dict) -> None:
    old_spec, spec = cur.get("spec") or {}, new.get("spec")
    if isinstance(spec, dict):
        for k in ("clusterIP", "clusterIPs"):
            if k in old_spec and not spec.get(k):
                spec[k] = old_spec[k]


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
    }


def _crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    ts = now()
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "acceptedNames": spec.get("names") or {},
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": ts},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": ts},
        ],
        "storedVersions": storage,
    }


def _validate_crd(crd: dict[str, Any]) -> list[dict[str, str]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    if not spec.get("group"):
        causes.append(cause("FieldValueRequired", "spec.group", "Required value"))
    if not names.get("plural"):
        causes.append(cause("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(cause("FieldValueRequired", "spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(cause("FieldValueNotSupported", "spec.scope",
                            f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(cause("FieldValueRequired", "spec.versions", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(cause("FieldValueInvalid", "spec.versions",
                            "Invalid value: []apiextensions.CustomResourceDefinitionVersion(nil): must have exactly one version marked as storage version"))
    if names.get("plural") and spec.get("group"):
        want = f"{names['plural']}.{spec['group']}"
        if crd["metadata"].get("name") != want:
            causes.append(cause("FieldValueInvalid", "metadata.name",
                                f'Invalid value: "{crd["metadata"].get("name")}": must be spec.names.plural+"."+spec.group'))
    return causes


def _node(name: str, zone: str, index: int) -> dict[str, Any]:
    ip = f"172.18.0.{index + 1}"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "topology.kubernetes.io/region": "us-west-1", "topology.kubernetes.io/zone": zone,
        }},
        "spec": {"podCIDR": f"10.244.{index - 1}.0/24", "podCIDRs": [f"10.244.{index - 1}.0/24"]},
        "status": {
            "addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": {"cpu": "8", "ephemeral-storage": "100Gi", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "ephemeral-storage": "100Gi", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
                            "lastTransitionTime": now()}],
            "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.24",
                         "kernelVersion": "6.1.0", "kubeProxyVersion": "v1.32.0", "kubeletVersion": "v1.32.0",
                         "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)"},
        },
    }
