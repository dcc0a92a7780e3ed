"""Effective mTLS mode, as Istio computes it from PeerAuthentications.

Order of precedence (narrowest wins, UNSET inherits): a port-level override
of a workload policy, the workload policy (selector), the namespace-wide
policy (no selector), the mesh-wide policy (no selector, root namespace),
then Istio's default, PERMISSIVE. When several policies apply at one level
Istio takes the oldest (creationTimestamp, then name).

When a level that could decide was not readable (the user may not list
PeerAuthentications there), the mode is UNKNOWN, with the permission that
was lacking: never the default guessed in its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_mesh.access import Denied
from kubectl_mesh.mesh import meta, name_of, selector_matches

DEFAULT_MODE = "PERMISSIVE"
MODES = ("STRICT", "PERMISSIVE", "DISABLE")


UNKNOWN = "UNKNOWN"


@dataclass
class Effective:
    mode: str
    source: str  # "mesh default", or "PeerAuthentication NS/NAME (namespace|mesh|workload)"
    ports: dict[int, tuple[str, str]] = field(default_factory=dict)
    denied: Denied | None = None  # mode UNKNOWN: the read that was refused

    @property
    def unknown(self) -> bool:
        return self.mode == UNKNOWN

    def unknown_message(self) -> str:
        """`mTLS mode unknown: the mesh-wide policy in istio-system is not readable (needs ...)`."""
        return f"mTLS mode unknown: {self.source} (needs {self.denied.permission})"

    def as_dict(self) -> dict:
        data = {
            "mode": self.mode,
            "source": self.source,
            "ports": [{"port": p, "mode": m, "source": s} for p, (m, s) in sorted(self.ports.items())],
        }
        if self.denied is not None:
            data["missingPermission"] = self.denied.as_dict()
        return data


def _age_key(policy: dict):
    return (meta(policy).get("creationTimestamp") or "", name_of(policy))


def is_namespace_wide(policy: dict) -> bool:
    selector = (policy.get("spec") or {}).get("selector") or {}
    return not selector.get("matchLabels")


def policy_mode(policy: dict) -> str | None:
    mode = (((policy.get("spec") or {}).get("mtls")) or {}).get("mode")
    return None if mode in (None, "", "UNSET") else mode


def describe_policy(policy: dict, level: str) -> str:
    return f"PeerAuthentication {meta(policy).get('namespace', '')}/{name_of(policy)} ({level})"


def namespace_wide_policies(snapshot, namespace: str) -> list[dict]:
    """The namespace's policies without a selector, oldest first (the first is the one Istio uses)."""
    return sorted(
        (p for p in snapshot.of_kind("PeerAuthentication", namespace) if is_namespace_wide(p)),
        key=_age_key,
    )


def _denied(snapshot, namespace: str) -> Denied | None:
    denial = getattr(snapshot, "denial", None)
    return denial("PeerAuthentication", namespace) if denial else None


def namespace_mode(snapshot, namespace: str) -> Effective:
    """The mode for a pod in `namespace` that no workload policy selects."""
    root = snapshot.root_namespace
    if namespace != root:
        local_denied = _denied(snapshot, namespace)
        if local_denied is not None:
            return Effective(UNKNOWN, f"the PeerAuthentications of {namespace} are not readable", denied=local_denied)
        local = namespace_wide_policies(snapshot, namespace)
        if local and policy_mode(local[0]):
            return Effective(policy_mode(local[0]), describe_policy(local[0], "namespace-wide"))
    root_denied = _denied(snapshot, root)
    if root_denied is not None:
        return Effective(UNKNOWN, f"the mesh-wide policy in {root} is not readable", denied=root_denied)
    mesh = namespace_wide_policies(snapshot, root)
    if mesh and policy_mode(mesh[0]):
        return Effective(policy_mode(mesh[0]), describe_policy(mesh[0], "mesh-wide"))
    return Effective(DEFAULT_MODE, "mesh default")


def workload_mode(snapshot, namespace: str, pod_labels: dict) -> Effective:
    """The effective mode for pods with these labels in `namespace`."""
    effective = namespace_mode(snapshot, namespace)
    selected = sorted(
        (
            p
            for p in snapshot.of_kind("PeerAuthentication", namespace)
            if not is_namespace_wide(p) and selector_matches((p.get("spec") or {}).get("selector"), pod_labels)
        ),
        key=_age_key,
    )
    if not selected:
        return effective
    policy = selected[0]
    effective = Effective(effective.mode, effective.source, denied=effective.denied)
    where = describe_policy(policy, "workload")
    if policy_mode(policy):
        effective = Effective(policy_mode(policy), where)  # decided here: what was unreadable no longer matters
    for port, setting in ((policy.get("spec") or {}).get("portLevelMtls") or {}).items():
        mode = (setting or {}).get("mode")
        if mode and mode != "UNSET":
            try:
                effective.ports[int(port)] = (mode, where)
            except (TypeError, ValueError):
                continue
    return effective


def strict_applies(effective: Effective) -> bool:
    """STRICT on the workload or on any of its ports."""
    return effective.mode == "STRICT" or any(m == "STRICT" for m, _ in effective.ports.values())
