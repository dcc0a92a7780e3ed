"""RBAC objects as kube-apiserver admits them, and the bootstrap policy a cluster starts with.

- :func:`bootstrap_objects`: the built-in ClusterRoles (``cluster-admin``, ``admin``, ``edit``,
  ``view``, the ``system:aggregate-to-*`` roles, ``system:basic-user``, ``system:discovery``,
  ``system:public-info-viewer``...) and ClusterRoleBindings, read from Kubernetes' own
  bootstrap-policy fixtures copied into ``tests/data/rbac/`` (see its SOURCES.md).
- :func:`validate`: the API validation of Roles, ClusterRoles and their bindings (verbs
  required, no non-resource URLs in a Role, roleRef kinds, roleRef immutable).
- :func:`check_escalation`: RBAC's privilege-escalation prevention: a user may create or
  change a role only with permissions they hold themselves (or the ``escalate`` verb), and a
  binding only to a role whose permissions they hold (or the ``bind`` verb on it);
  ``system:masters`` is exempt.
"""

from __future__ import annotations

import contextvars
import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from . import errors
from .errors import ApiError, cause
from .rbac import (
    CLUSTER_ROLES,
    GROUP,
    MASTERS,
    ROLES,
    Authorizer,
    Identity,
    aggregate,
    format_rule,
    uncovered,
)
from .requestinfo import RequestAttributes

DATA = Path(__file__).resolve().parent.parent / "data" / "rbac"
# The user making the current API request (set by the HTTP handler; None for direct access
# from a test, which acts as the cluster's own privileged loopback client).
REQUESTER: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("requester", default=None)


@functools.cache
def _fixture(name: str) -> tuple[dict[str, Any], ...]:
    with open(DATA / name, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    items = []
    for item in doc.get("items") or []:
        item = copy.deepcopy(item)
        meta = item["metadata"]
        meta.pop("creationTimestamp", None)
        if item.get("rules") is None:
            item.pop("rules", None)
        items.append(item)
    return tuple(items)


@functools.cache
def bootstrap_objects() -> tuple[tuple[tuple[str, str], dict[str, Any]], ...]:
    """(resource key, object) for the bootstrap ClusterRoles (aggregated) and bindings.
    Shared between clusters: the store never mutates what it holds."""
    roles = [dict(r) for r in _fixture("cluster-roles.yaml")]
    aggregated = aggregate(roles)
    for role in roles:
        if role["metadata"]["name"] in aggregated:
            role["rules"] = aggregated[role["metadata"]["name"]]
    bindings = _fixture("cluster-role-bindings.yaml")
    return tuple([(CLUSTER_ROLES, r) for r in roles]
                 + [((GROUP, "clusterrolebindings"), b) for b in bindings])


# ------------------------------------------------------------------------------- validation

def default_subjects(obj: dict[str, Any]) -> None:
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and "apiGroup" not in subject:
            subject["apiGroup"] = "" if subject.get("kind") == "ServiceAccount" else GROUP


def _go_role_ref(ref: dict[str, Any]) -> str:
    return (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
            f'Name:"{ref.get("name", "")}"}}')


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    if kind in ("Role", "ClusterRole"):
        for i, rule in enumerate(obj.get("rules") or []):
            path = f"rules[{i}]"
            rule = rule if isinstance(rule, dict) else {}
            if not rule.get("verbs"):
                causes.append(cause("FieldValueRequired", f"{path}.verbs",
                                    "Required value: verbs must contain at least one value"))
            if rule.get("nonResourceURLs"):
                urls = "[]string{" + ", ".join(f'"{u}"' for u in rule["nonResourceURLs"]) + "}"
                if kind == "Role":
                    causes.append(cause("FieldValueInvalid", f"{path}.nonResourceURLs",
                                        f"Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs"))
                if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                    causes.append(cause("FieldValueInvalid", f"{path}.nonResourceURLs",
                                        f"Invalid value: {urls}: rules cannot apply to both regular resources "
                                        "and non-resource URLs"))
                continue
            if not rule.get("apiGroups"):
                causes.append(cause("FieldValueRequired", f"{path}.apiGroups",
                                    "Required value: resource rules must supply at least one api group"))
            if not rule.get("resources"):
                causes.append(cause("FieldValueRequired", f"{path}.resources",
                                    "Required value: resource rules must supply at least one resource"))
        return causes
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    kinds = ("Role", "ClusterRole") if kind == "RoleBinding" else ("ClusterRole",)
    if ref.get("apiGroup") != GROUP:
        causes.append(cause("FieldValueNotSupported", "roleRef.apiGroup",
                            f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{GROUP}"'))
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(cause("FieldValueNotSupported", "roleRef.kind",
                            f'Unsupported value: "{ref.get("kind", "")}": supported values: {supported}'))
    if not ref.get("name"):
        causes.append(cause("FieldValueRequired", "roleRef.name", "Required value"))
    for i, subject in enumerate(obj.get("subjects") or []):
        subject = subject if isinstance(subject, dict) else {}
        if subject.get("kind") not in ("User", "Group", "ServiceAccount"):
            causes.append(cause("FieldValueNotSupported", f"subjects[{i}].kind",
                                f'Unsupported value: "{subject.get("kind", "")}": supported values: '
                                '"ServiceAccount", "User", "Group"'))
        if not subject.get("name"):
            causes.append(cause("FieldValueRequired", f"subjects[{i}].name", "Required value"))
    if old is not None and (old.get("roleRef") or {}) != ref:
        causes.append(cause("FieldValueInvalid", "roleRef",
                            f"Invalid value: {_go_role_ref(ref)}: cannot change roleRef"))
    return causes


# ------------------------------------------------------------------------------- escalation

def _groups(identity: Identity) -> str:
    return "[" + " ".join(f'"{g}"' for g in identity.groups) + "]"


def _compact(missing: list[dict[str, Any]]) -> list[str]:
    merged: dict[tuple, dict[str, Any]] = {}
    for m in missing:
        key = (tuple(m.get("apiGroups", [])), tuple(m.get("resources", [])), tuple(m.get("resourceNames", [])),
               tuple(m.get("nonResourceURLs", [])))
        if key in merged:
            merged[key]["verbs"] = sorted(set(merged[key]["verbs"]) | set(m["verbs"]))
        else:
            merged[key] = dict(m)
    return sorted(format_rule(m) for m in merged.values())


def check_escalation(authorizer: Authorizer, store, rt_kind: str, plural: str, obj: dict[str, Any]) -> None:
    """Refuse (403) a role or binding that would grant the requester more than they hold."""
    identity = REQUESTER.get()
    if identity is None or MASTERS in identity.groups:
        return
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    if rt_kind in ("Role", "ClusterRole"):
        escalate = RequestAttributes(verb="escalate", path="", resource_request=True, api_group=GROUP,
                                     api_version="v1", namespace=ns, resource=plural, name=name)
        if authorizer.authorize(identity, escalate)[0]:
            return
        requested = obj.get("rules") or []
    else:
        ref = obj.get("roleRef") or {}
        ref_plural = "roles" if ref.get("kind") == "Role" else "clusterroles"
        bind = RequestAttributes(verb="bind", path="", resource_request=True, api_group=GROUP, api_version="v1",
                                 namespace=ns, resource=ref_plural, name=ref.get("name", ""))
        if authorizer.authorize(identity, bind)[0]:
            return
        role = store.get(ROLES if ref.get("kind") == "Role" else CLUSTER_ROLES,
                         ns if ref.get("kind") == "Role" else "", ref.get("name", ""))
        if role is None:
            resource = "role" if ref.get("kind") == "Role" else "clusterrole"
            raise errors.forbidden_because(plural, GROUP, name,
                                           f'{resource}.{GROUP} "{ref.get("name", "")}" not found')
        requested = role.get("rules") or []
    missing = uncovered(authorizer.held_rules(identity, ns), requested)
    if missing:
        raise errors.forbidden_because(
            plural, GROUP, name,
            f'user "{identity.name}" (groups={_groups(identity)}) is attempting to grant RBAC permissions '
            "not currently held:\n" + "\n".join(_compact(missing)))


def admit(authorizer: Authorizer, store, kind: str, plural: str, obj: dict[str, Any],
          old: dict[str, Any] | None) -> None:
    """Defaulting, validation and escalation checks of an RBAC object being written."""
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        default_subjects(obj)
    causes = validate(kind, obj, old)
    if causes:
        raise errors.invalid(kind, GROUP, (obj.get("metadata") or {}).get("name", ""), causes)
    check_escalation(authorizer, store, kind, plural, obj)


__all__ = ["REQUESTER", "ApiError", "admit", "bootstrap_objects", "validate"]
