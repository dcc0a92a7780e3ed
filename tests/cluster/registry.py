"""Resource types the server knows: built-in kinds plus those defined by CRDs.

A cluster owns a :class:`Registry`; CRDs created through the API (or preloaded Istio and
Gateway API CRDs) register their resources in it, so discovery, OpenAPI and routing all
follow the CRD objects in the store, as on a real cluster.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ISTIO_CRD_FILE = DATA_DIR / "crds" / "crd-all.gen.yaml"
GATEWAY_API_CRD_FILE = DATA_DIR / "cluster" / "gateway-api-crds.yaml"

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(eq=False)
class ResourceType:
    group: str
    versions: list[str]  # served versions, preferred first
    storage_version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    # Custom resources only: version -> openAPIV3Schema / additionalPrinterColumns.
    schemas: dict[str, dict] = field(default_factory=dict)
    printer_columns: dict[str, list] = field(default_factory=dict)
    crd_name: str | None = None
    # Identity of the definition, used to cache derived documents (OpenAPI, validators).
    fingerprint: str = ""
    # Spec changes bump metadata.generation (apps kinds and custom resources).
    has_generation: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(kind, plural, *, namespaced=True, short=(), cats=(), sub=(), singular=None, verbs=None):
    return ResourceType(
        group="", versions=["v1"], storage_version="v1", kind=kind, plural=plural,
        singular=singular or kind.lower(), namespaced=namespaced, short_names=list(short),
        categories=list(cats), subresources=tuple(sub), verbs=list(verbs or ALL_VERBS),
        fingerprint=f"builtin:{plural}",
    )


def _apps(kind, plural, *, short=(), sub=("status",)):
    return ResourceType(
        group="apps", versions=["v1"], storage_version="v1", kind=kind, plural=plural,
        singular=kind.lower(), namespaced=True, short_names=list(short), categories=["all"],
        subresources=tuple(sub), fingerprint=f"builtin:{plural}.apps", has_generation=True,
    )


def _review(kind, plural, group="authorization.k8s.io"):
    return ResourceType(
        group=group, versions=["v1"], storage_version="v1", kind=kind, plural=plural,
        singular=kind.lower(), namespaced=False, verbs=["create"], fingerprint=f"builtin:{plural}",
    )


def _rbac(kind, plural, *, namespaced):
    return ResourceType(
        group="rbac.authorization.k8s.io", versions=["v1"], storage_version="v1", kind=kind, plural=plural,
        singular=kind.lower(), namespaced=namespaced, fingerprint=f"builtin:{plural}.rbac.authorization.k8s.io",
    )


def builtin_types() -> list[ResourceType]:
    return [
        _core("Namespace", "namespaces", namespaced=False, short=["ns"], sub=["status"],
              verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
        _core("Pod", "pods", short=["po"], cats=["all"], sub=["status", "log"]),
        _core("Service", "services", short=["svc"], cats=["all"], sub=["status"]),
        _core("Endpoints", "endpoints", short=["ep"], singular="endpoints"),
        _core("ConfigMap", "configmaps", short=["cm"]),
        _core("Secret", "secrets"),
        _core("ServiceAccount", "serviceaccounts", short=["sa"]),
        _core("Node", "nodes", namespaced=False, short=["no"], sub=["status"]),
        _core("Event", "events", short=["ev"]),
        _apps("Deployment", "deployments", short=["deploy"], sub=("status", "scale")),
        _apps("ReplicaSet", "replicasets", short=["rs"], sub=("status", "scale")),
        _apps("StatefulSet", "statefulsets", short=["sts"], sub=("status", "scale")),
        _apps("DaemonSet", "daemonsets", short=["ds"], sub=("status",)),
        # `kubectl auth can-i` and `can-i --list`: answered from RBAC (see rbac.py).
        _review("SelfSubjectAccessReview", "selfsubjectaccessreviews"),
        _review("SelfSubjectRulesReview", "selfsubjectrulesreviews"),
        _review("SelfSubjectReview", "selfsubjectreviews", group="authentication.k8s.io"),  # kubectl auth whoami
        _rbac("Role", "roles", namespaced=True),
        _rbac("ClusterRole", "clusterroles", namespaced=False),
        _rbac("RoleBinding", "rolebindings", namespaced=True),
        _rbac("ClusterRoleBinding", "clusterrolebindings", namespaced=False),
        ResourceType(
            group="apiextensions.k8s.io", versions=["v1"], storage_version="v1",
            kind="CustomResourceDefinition", plural="customresourcedefinitions",
            singular="customresourcedefinition", namespaced=False, short_names=["crd", "crds"],
            categories=["api-extensions"], subresources=("status",),
            fingerprint="builtin:customresourcedefinitions", has_generation=True,
        ),
    ]


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple:
    """Sort key giving Kubernetes' version priority (v1 > v1beta2 > v1beta1 > v1alpha1 > other)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def resource_type_from_crd(crd: dict[str, Any]) -> ResourceType:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    versions = sorted((v["name"] for v in served), key=version_priority)
    storage = next(
        (v["name"] for v in spec.get("versions", []) if v.get("storage")), versions[0] if versions else "v1"
    )
    subresources: list[str] = []
    schemas: dict[str, dict] = {}
    columns: dict[str, list] = {}
    for v in served:
        if (v.get("subresources") or {}).get("status") is not None and "status" not in subresources:
            subresources.append("status")
        if (v.get("subresources") or {}).get("scale") is not None and "scale" not in subresources:
            subresources.append("scale")
        schemas[v["name"]] = ((v.get("schema") or {}).get("openAPIV3Schema")) or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        }
        columns[v["name"]] = v.get("additionalPrinterColumns") or []
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return ResourceType(
        group=spec["group"], versions=versions, storage_version=storage, kind=names["kind"],
        plural=names["plural"], singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []), subresources=tuple(subresources),
        schemas=schemas, printer_columns=columns, crd_name=crd["metadata"]["name"],
        fingerprint=f"crd:{crd['metadata']['name']}:{digest}", has_generation=True,
    )


def _load_crd_file(path: Path) -> list[tuple[dict, ResourceType]]:
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.load_all(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
    return [(d, resource_type_from_crd(d)) for d in docs if d.get("kind") == "CustomResourceDefinition"]


@functools.cache
def istio_crds() -> list[tuple[dict, ResourceType]]:
    """Istio's CRDs (parsed once per process; the dicts are shared and never mutated)."""
    return _load_crd_file(ISTIO_CRD_FILE)


@functools.cache
def gateway_api_crds() -> list[tuple[dict, ResourceType]]:
    return _load_crd_file(GATEWAY_API_CRD_FILE)


class Registry:
    """The resource types one cluster serves (built-ins plus registered CRDs)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], ResourceType] = {}
        for rt in builtin_types():
            self._types[rt.key] = rt

    def add(self, rt: ResourceType) -> None:
        self._types[rt.key] = rt

    def remove(self, key: tuple[str, str]) -> None:
        self._types.pop(key, None)

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def get(self, group: str, plural: str) -> ResourceType | None:
        return self._types.get((group, plural))

    def for_gv(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self._types.get((group, plural))
        if rt is None or version not in rt.versions:
            return None
        return rt

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.group == group and rt.kind == kind:
                return rt
        return None

    def for_api_version(self, api_version: str, kind: str) -> tuple[ResourceType, str] | None:
        group, _, version = api_version.rpartition("/")
        rt = self.by_kind(group, kind)
        if rt is None or version not in rt.versions:
            return None
        return rt, version

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first), in a stable order."""
        out: dict[str, set[str]] = {}
        for rt in self._types.values():
            out.setdefault(rt.group, set()).update(rt.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def resolve(self, name: str) -> ResourceType:
        """Find a type by kind, plural, singular or short name, optionally ``.group`` qualified."""
        low = name.lower()
        candidates = []
        for rt in self._types.values():
            names = {rt.plural, rt.singular, rt.kind.lower(), *rt.short_names}
            for n in names:
                if low == n or (rt.group and low == f"{n}.{rt.group}"):
                    candidates.append(rt)
                    break
                if rt.group and any(low == f"{n}.{v}.{rt.group}" for v in rt.versions):
                    candidates.append(rt)
                    break
        if not candidates:
            raise KeyError(f"unknown resource type {name!r}")
        # Prefer the core/built-in type when a bare name is ambiguous (e.g. "gateways").
        candidates.sort(key=lambda rt: (rt.is_custom, rt.group))
        return candidates[0]

    def fingerprint(self) -> tuple[str, ...]:
        return tuple(sorted(rt.fingerprint for rt in self._types.values()))
