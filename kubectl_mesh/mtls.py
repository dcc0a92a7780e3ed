"""Effective mTLS mode, as Istio computes it from PeerAuthentications.

Order of precedence (narrowest wins, UNSET inherits): a port-level override
of a workload policy, the workload policy (selector), the namespace-wide
policy (no selector), the mesh-wide policy (no selector, root namespace),
then Istio's default, PERMISSIVE. When several policies apply at one level
Istio takes the oldest (creationTimestamp, then name).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_mesh.mesh import meta, name_of, selector_matches

DEFAULT_MODE = "PERMISSIVE"
MODES = ("STRICT", "PERMISSIVE", "DISABLE")


@dataclass
class Effective:
    mode: str
    source: str  # "mesh default", or "PeerAuthentication NS/NAME (namespace|mesh|workload)"
    ports: dict[int, tuple[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "source": self.source,
            "ports": [{"port": p, "mode": m, "source": s} for p, (m, s) in sorted(self.ports.items())],
        }


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


def namespace_mode(snapshot, namespace: str) -> Effective:
    """The mode for a pod in `namespace` that no workload policy selects."""
    mesh = namespace_wide_policies(snapshot, snapshot.root_namespace)
    mode, source = DEFAULT_MODE, "mesh default"
    if mesh and policy_mode(mesh[0]):
        mode, source = policy_mode(mesh[0]), describe_policy(mesh[0], "mesh-wide")
    if namespace != snapshot.root_namespace:
        local = namespace_wide_policies(snapshot, namespace)
        if local and policy_mode(local[0]):
            mode, source = policy_mode(local[0]), describe_policy(local[0], "namespace-wide")
    return Effective(mode, source)


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
    where = describe_policy(policy, "workload")
    if policy_mode(policy):
        effective = Effective(policy_mode(policy), where)
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
