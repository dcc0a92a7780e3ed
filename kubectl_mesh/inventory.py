"""Who is in the mesh: each pod's sidecar state, grouped by workload.

Shared by verify, enable, disable, mtls, diagnose and status so that "pod
lacks its proxy" means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_mesh import mesh
from kubectl_mesh.snapshot import Snapshot, WorkloadRef


@dataclass
class PodState:
    pod: dict
    name: str
    namespace: str
    workload: WorkloadRef | None
    has_sidecar: bool
    layout: str | None  # "container", "native" or None
    opted_out: bool
    expected: bool  # Istio's webhook would inject it if it were created now
    ready: bool
    proxy_ready: bool | None

    @property
    def missing_sidecar(self) -> bool:
        """Should have the proxy (namespace labelled, not opted out) but has not:
        typically created before the label, so its workload must be restarted."""
        return self.expected and not self.has_sidecar


@dataclass
class WorkloadState:
    ref: WorkloadRef
    pods: list[PodState] = field(default_factory=list)

    @property
    def missing(self) -> list[PodState]:
        return [p for p in self.pods if p.missing_sidecar]

    @property
    def meshed(self) -> list[PodState]:
        return [p for p in self.pods if p.has_sidecar]


def pod_state(snapshot: Snapshot, pod: dict, namespace_obj: dict | None) -> PodState:
    return PodState(
        pod=pod,
        name=mesh.name_of(pod),
        namespace=mesh.namespace_of(pod),
        workload=snapshot.workload_of(pod),
        has_sidecar=mesh.has_sidecar(pod),
        layout=mesh.sidecar_layout(pod),
        opted_out=mesh.opted_out(pod),
        expected=mesh.expects_sidecar(pod, namespace_obj),
        ready=mesh.pod_ready(pod),
        proxy_ready=mesh.proxy_ready(pod),
    )


def live_pods(snapshot: Snapshot, namespace: str) -> list[dict]:
    """Pods that count: not finished (Succeeded/Failed) and not being deleted."""
    return [
        p
        for p in snapshot.pods(namespace)
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not mesh.pod_terminating(p)
    ]


def namespace_pods(snapshot: Snapshot, namespace: str) -> list[PodState]:
    ns_obj = snapshot.namespace(namespace)
    return [pod_state(snapshot, p, ns_obj) for p in live_pods(snapshot, namespace)]


def by_workload(states: list[PodState]) -> list[WorkloadState]:
    """Pods grouped by their workload; pods with no owner stand alone."""
    groups: dict[object, WorkloadState] = {}
    for state in states:
        ref = state.workload or WorkloadRef("Pod", state.namespace, state.name)
        groups.setdefault(ref, WorkloadState(ref)).pods.append(state)
    return list(groups.values())


def unmeshed_clients(snapshot: Snapshot, exclude_namespace: str) -> list[WorkloadState]:
    """Workloads in other (non-system) namespaces whose pods have no sidecar: with
    STRICT mTLS in `exclude_namespace` they can no longer reach it."""
    result = []
    for ns in snapshot.namespace_names():
        if ns == exclude_namespace or mesh.is_system_namespace(ns):
            continue
        states = [s for s in namespace_pods(snapshot, ns) if not s.has_sidecar]
        result.extend(by_workload(states))
    return result
