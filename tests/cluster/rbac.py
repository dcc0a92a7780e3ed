"""RBAC authorization from the stored rbac.authorization.k8s.io/v1 objects, with
kube-apiserver's semantics (plugin/pkg/auth/authorizer/rbac):

- ClusterRoleBindings apply everywhere; RoleBindings only to requests in their namespace,
  whether they reference a Role of that namespace or a ClusterRole.
- A rule allows a request when its verbs, apiGroups, resources (``pods/log``, ``*/scale``),
  resourceNames and, for non-resource requests, nonResourceURLs (``/apis/*``) all match.
- The group ``system:masters`` is allowed everything before RBAC is asked (kube-apiserver's
  privileged-groups authorizer), so the cluster admin never depends on a binding.
- A binding whose role does not exist grants nothing; a denial then says why
  (``RBAC: role.rbac.authorization.k8s.io "x" not found``).
- ClusterRoles with an ``aggregationRule`` get the union of the rules of the ClusterRoles
  their selectors match (the clusterrole-aggregation controller), see :func:`aggregate`.

Bindings are indexed by subject (user, group, service account) and the rules a user gets
in a namespace are cached until an RBAC object changes, so a request costs a dictionary
lookup and a scan of that user's rules only.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .requestinfo import RequestAttributes
from .selectors import match_selector_object

GROUP = "rbac.authorization.k8s.io"
ROLES = (GROUP, "roles")
CLUSTER_ROLES = (GROUP, "clusterroles")
ROLE_BINDINGS = (GROUP, "rolebindings")
CLUSTER_ROLE_BINDINGS = (GROUP, "clusterrolebindings")
RBAC_KEYS = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Identity:
    """An authenticated user (user.Info)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Rule:
    """A PolicyRule, its lists as frozensets for matching."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    urls: tuple[str, ...]

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Rule:
        return cls(frozenset(rule.get("verbs") or ()), frozenset(rule.get("apiGroups") or ()),
                   frozenset(rule.get("resources") or ()), frozenset(rule.get("resourceNames") or ()),
                   tuple(rule.get("nonResourceURLs") or ()))

    def allows(self, a: RequestAttributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            return any(u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                       for u in self.urls)
        if "*" not in self.api_groups and a.api_group not in self.api_groups:
            return False
        combined = a.combined_resource
        if "*" not in self.resources and combined not in self.resources and not (
                a.subresource and f"*/{a.subresource}" in self.resources):
            return False
        return not self.resource_names or a.name in self.resource_names

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": sorted(self.verbs)}
        if self.urls:
            out["nonResourceURLs"] = list(self.urls)
        else:
            out["apiGroups"] = sorted(self.api_groups)
            out["resources"] = sorted(self.resources)
        if self.resource_names:
            out["resourceNames"] = sorted(self.resource_names)
        return out


@dataclass(frozen=True)
class Grant:
    """One binding's subject and the role it grants, as the authorizer describes it."""

    source: str  # 'ClusterRoleBinding "x" of ClusterRole "y" to User "dev"' (RBAC's wording)
    rules: tuple[Rule, ...]
    error: str = ""  # the role does not exist


@dataclass
class _Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str  # "" for ClusterRoleBindings
    role_kind: str
    role_name: str
    subject: dict[str, Any]


@dataclass
class _Index:
    users: dict[str, list[_Binding]] = field(default_factory=lambda: defaultdict(list))
    groups: dict[str, list[_Binding]] = field(default_factory=lambda: defaultdict(list))


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def service_account_user(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


class Authorizer:
    """Decisions from the RBAC objects in a :class:`~tests.cluster.store.Store`."""

    def __init__(self, store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation = 0
        self._index: _Index | None = None
        self._role_rules: dict[tuple[str, str, str], tuple[Rule, ...] | None] = {}
        # (identity, namespace) -> grants from ClusterRoleBindings, then the namespace's RoleBindings.
        self._grants: dict[tuple[Identity, str], tuple[Grant, ...]] = {}

    def invalidate(self) -> None:
        """An RBAC object changed: drop the index and every cached answer."""
        with self._lock:
            self._generation += 1
            self._index = None
            self._role_rules.clear()
            self._grants.clear()

    # -- index ------------------------------------------------------------------------

    def _build_index(self) -> _Index:
        index = _Index()
        for key, kind in ((CLUSTER_ROLE_BINDINGS, "ClusterRoleBinding"), (ROLE_BINDINGS, "RoleBinding")):
            for obj in self.store.list(key):
                meta = obj["metadata"]
                ref = obj.get("roleRef") or {}
                ns = meta.get("namespace", "") if kind == "RoleBinding" else ""
                for subject in obj.get("subjects") or []:
                    binding = _Binding(kind, meta["name"], ns, ref.get("kind", ""), ref.get("name", ""), subject)
                    skind, sname = subject.get("kind"), subject.get("name", "")
                    if skind == "User":
                        index.users[sname].append(binding)
                    elif skind == "Group":
                        index.groups[sname].append(binding)
                    elif skind == "ServiceAccount":
                        sa_ns = subject.get("namespace") or ns
                        if sa_ns:  # a ClusterRoleBinding's service account needs its namespace
                            index.users[service_account_user(sa_ns, sname)].append(binding)
        return index

    def _rules_of(self, role_kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        key = (role_kind, namespace, name)
        if key not in self._role_rules:
            if role_kind == "ClusterRole":
                obj = self.store.get(CLUSTER_ROLES, "", name)
            elif role_kind == "Role":
                obj = self.store.get(ROLES, namespace, name)
            else:
                obj = None
            self._role_rules[key] = None if obj is None else tuple(Rule.of(r) for r in obj.get("rules") or [])
        return self._role_rules[key]

    def grants(self, identity: Identity, namespace: str) -> tuple[Grant, ...]:
        """Everything bound to ``identity`` that applies in ``namespace`` ("" = cluster scope only)."""
        with self._lock:
            cached = self._grants.get((identity, namespace))
            if cached is not None:
                return cached
            if self._index is None:
                self._index = self._build_index()
            index = self._index
            bindings = list(index.users.get(identity.name, ()))
            for group in identity.groups:
                bindings += index.groups.get(group, ())
            out: list[Grant] = []
            # ClusterRoleBindings first, then the RoleBindings of the namespace, as RBAC visits them.
            for kind in ("ClusterRoleBinding", "RoleBinding"):
                for b in bindings:
                    if b.kind != kind or (kind == "RoleBinding" and b.namespace != namespace):
                        continue
                    role_ns = b.namespace if b.role_kind == "Role" else ""
                    rules = self._rules_of(b.role_kind, role_ns, b.role_name)
                    name = b.name if kind == "ClusterRoleBinding" else f"{b.name}/{b.namespace}"
                    source = (f'{kind} "{name}" of {b.role_kind} "{b.role_name}" to '
                              f"{_describe_subject(b.subject, b.namespace)}")
                    if rules is None:
                        resource = "clusterrole" if b.role_kind == "ClusterRole" else "role"
                        out.append(Grant(source, (), f'{resource}.{GROUP} "{b.role_name}" not found'))
                    else:
                        out.append(Grant(source, rules))
            result = tuple(out)
            self._grants[(identity, namespace)] = result
            return result

    # -- decisions --------------------------------------------------------------------

    def authorize(self, identity: Identity, attrs: RequestAttributes) -> tuple[bool, str]:
        """(allowed, reason): the reason is RBAC's (``RBAC: allowed by ...``, or the errors met)."""
        if MASTERS in identity.groups:
            return True, ""
        errors: list[str] = []
        for grant in self.grants(identity, attrs.namespace if attrs.resource_request else ""):
            if grant.error:
                errors.append(grant.error)
                continue
            for rule in grant.rules:
                if rule.allows(attrs):
                    return True, f"RBAC: allowed by {grant.source}"
        return False, _reason(errors)

    def rules_review(self, identity: Identity, namespace: str) -> dict[str, Any]:
        """The status of a SelfSubjectRulesReview (RBAC's RulesFor)."""
        # system:masters gets its rules from the cluster-admin binding here: the privileged-group
        # authorizer answers decisions but lists no rules.
        resource_rules, non_resource_rules, errors = [], [], []
        for grant in self.grants(identity, namespace):
            if grant.error:
                errors.append(grant.error)
            for rule in grant.rules:
                if rule.urls:
                    non_resource_rules.append({"verbs": sorted(rule.verbs), "nonResourceURLs": list(rule.urls)})
                else:
                    d = {"verbs": sorted(rule.verbs), "apiGroups": sorted(rule.api_groups),
                         "resources": sorted(rule.resources)}
                    if rule.resource_names:
                        d["resourceNames"] = sorted(rule.resource_names)
                    resource_rules.append(d)
        status: dict[str, Any] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                                  "incomplete": bool(errors)}
        if errors:
            status["evaluationError"] = _aggregate(errors)
        return status

    def held_rules(self, identity: Identity, namespace: str) -> list[Rule]:
        return [r for g in self.grants(identity, namespace) for r in g.rules]


def _aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error as is, several as [a, b]."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _reason(errors: list[str]) -> str:
    return f"RBAC: {_aggregate(errors)}" if errors else ""


# ------------------------------------------------------------------------------- escalation

def _covers(owner: list[Rule], verb: str, group: str, resource: str, name: str, url: str) -> bool:
    for r in owner:
        if "*" not in r.verbs and verb not in r.verbs:
            continue
        if url:
            if any(u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1])) for u in r.urls):
                return True
            continue
        if r.urls:
            continue
        if "*" not in r.api_groups and group not in r.api_groups:
            continue
        sub = resource.split("/", 1)[1] if "/" in resource else ""
        if "*" not in r.resources and resource not in r.resources and not (sub and f"*/{sub}" in r.resources):
            continue
        if r.resource_names and (not name or name not in r.resource_names):
            continue
        return True
    return False


def uncovered(owner: list[Rule], requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requested rules, broken into single permissions, that ``owner`` does not hold
    (RBAC's escalation check, validation.Covers)."""
    missing: list[dict[str, Any]] = []
    for raw in requested:
        rule = Rule.of(raw)
        names = sorted(rule.resource_names) or [""]
        for verb in sorted(rule.verbs):
            if rule.urls:
                for url in rule.urls:
                    if not _covers(owner, verb, "", "", "", url):
                        missing.append({"nonResourceURLs": [url], "verbs": [verb]})
                continue
            for group in sorted(rule.api_groups):
                for resource in sorted(rule.resources):
                    for name in names:
                        if not _covers(owner, verb, group, resource, name, ""):
                            m: dict[str, Any] = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                            if name:
                                m["resourceNames"] = [name]
                            missing.append(m)
    return missing


def format_rule(rule: dict[str, Any]) -> str:
    """A rule as RBAC's escalation message prints it: {APIGroups:["apps"], Resources:["x"], Verbs:["get"]}."""
    def q(values: list[str]) -> str:
        return "[" + " ".join(f'"{v}"' for v in values) + "]"
    parts = []
    if rule.get("nonResourceURLs"):
        parts.append(f"NonResourceURLs:{q(rule['nonResourceURLs'])}")
    else:
        parts.append(f"APIGroups:{q(rule.get('apiGroups', []))}")
        parts.append(f"Resources:{q(rule.get('resources', []))}")
        if rule.get("resourceNames"):
            parts.append(f"ResourceNames:{q(rule['resourceNames'])}")
    parts.append(f"Verbs:{q(rule.get('verbs', []))}")
    return "{" + ", ".join(parts) + "}"


# ------------------------------------------------------------------------------- aggregation

def aggregate(cluster_roles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """name -> the rules an aggregated ClusterRole should have, for the ones whose stored rules
    differ (the clusterrole-aggregation controller, run to a fixed point so that roles
    aggregated into roles that are themselves aggregated, as view into edit into admin, settle)."""
    roles = {r["metadata"]["name"]: r for r in cluster_roles}
    rules = {name: list(r.get("rules") or []) for name, r in roles.items()}
    changed: set[str] = set()
    for _ in range(len(roles) + 1):
        moved = False
        for name in sorted(roles):
            agg = roles[name].get("aggregationRule")
            if not isinstance(agg, dict):
                continue
            selectors = agg.get("clusterRoleSelectors") or []
            matched = sorted(other for other, r in roles.items() if other != name and any(
                match_selector_object(s, r["metadata"].get("labels") or {}) for s in selectors))
            new: list[dict[str, Any]] = []
            for other in matched:
                for rule in rules[other]:
                    if rule not in new:
                        new.append(rule)
            if new != rules[name]:
                rules[name] = new
                changed.add(name)
                moved = True
        if not moved:
            break
    return {name: rules[name] for name in changed if rules[name] != list(roles[name].get("rules") or [])}
