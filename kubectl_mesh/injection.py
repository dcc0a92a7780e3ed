"""Plans for `enable` and `disable`: which labels change, which workloads restart.

Pure functions over a Snapshot; the commands apply what these return.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from kubectl_mesh import english, errors, inventory, mesh
from kubectl_mesh.snapshot import Snapshot, WorkloadRef


@dataclass
class LabelChange:
    set: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.set and not self.remove

    def kubectl_args(self, namespace: str, resource_version: str | None) -> list[str]:
        args = ["label", "namespace", namespace]
        args += [f"{k}={v}" for k, v in self.set.items()]
        args += [f"{k}-" for k in self.remove]
        args.append("--overwrite")
        if resource_version:
            args.append(f"--resource-version={resource_version}")
        return args

    def applied_to(self, namespace_obj: dict) -> dict:
        """The namespace as it will be after the change (for planning restarts)."""
        result = copy.deepcopy(namespace_obj)
        labels = result.setdefault("metadata", {}).setdefault("labels", {}) or {}
        result["metadata"]["labels"] = labels
        for key in self.remove:
            labels.pop(key, None)
        labels.update(self.set)
        return result


def enable_labels(namespace_obj: dict, revision: str | None, *, force: bool) -> LabelChange:
    """The label change that makes the namespace inject sidecars, one way only.

    With a revision: istio.io/rev=REV and no istio-injection (it would win).
    Without: istio-injection=enabled and no istio.io/rev (a leftover would
    confuse analyze and upgrades). Ambient namespaces are refused unless forced.
    """
    labels = mesh.labels_of(namespace_obj)
    name = mesh.name_of(namespace_obj)
    change = LabelChange()
    if labels.get(mesh.DATAPLANE_LABEL) == "ambient":
        if not force:
            raise errors.Refused(
                f"namespace {name} is in ambient mode (istio.io/dataplane-mode=ambient); sidecars would "
                "double-capture its traffic. Use --force to switch it to sidecar injection"
            )
        change.remove.append(mesh.DATAPLANE_LABEL)
        change.reasons.append("leave ambient mode (--force)")
    if revision:
        if labels.get(mesh.REVISION_LABEL) != revision:
            change.set[mesh.REVISION_LABEL] = revision
            change.reasons.append(f"inject with revision {revision}")
        if mesh.INJECTION_LABEL in labels:
            change.remove.append(mesh.INJECTION_LABEL)
            change.reasons.append(
                f"remove istio-injection={labels[mesh.INJECTION_LABEL]}, which would override istio.io/rev"
            )
    else:
        if labels.get(mesh.INJECTION_LABEL) != "enabled":
            change.set[mesh.INJECTION_LABEL] = "enabled"
            change.reasons.append("enable injection")
        if mesh.REVISION_LABEL in labels:
            change.remove.append(mesh.REVISION_LABEL)
            change.reasons.append(
                f"remove the conflicting istio.io/rev={labels[mesh.REVISION_LABEL]} label"
            )
    return change


def disable_labels(namespace_obj: dict) -> LabelChange:
    labels = mesh.labels_of(namespace_obj)
    change = LabelChange()
    for key in (mesh.INJECTION_LABEL, mesh.REVISION_LABEL):
        if key in labels and not (key == mesh.INJECTION_LABEL and labels[key] == "disabled"):
            change.remove.append(key)
            change.reasons.append(f"remove {key}={labels[key]}")
    return change


def pod_revision(pod: dict) -> str | None:
    """The control-plane revision that injected this pod's sidecar, if recorded."""
    annotations = mesh.annotations_of(pod)
    status = annotations.get("sidecar.istio.io/status")
    if status:
        try:
            revision = json.loads(status).get("revision")
            if revision:
                return revision
        except (ValueError, AttributeError):
            pass
    return annotations.get(mesh.REVISION_LABEL)


def wanted_revision(namespace_obj: dict) -> str:
    mode = mesh.injection_mode(namespace_obj)
    if mode == "revision":
        return mesh.labels_of(namespace_obj)[mesh.REVISION_LABEL]
    return "default"


@dataclass
class Restart:
    workload: WorkloadRef
    reason: str
    pods: list[str]


@dataclass
class RestartPlan:
    restarts: list[Restart] = field(default_factory=list)
    # Pods needing a restart that no restartable workload owns (bare pods, Jobs).
    orphans: list[inventory.PodState] = field(default_factory=list)


def enable_restarts(snapshot: Snapshot, namespace: str, future_ns: dict, policy: str) -> RestartPlan:
    """Workloads to restart so their pods get the sidecar the namespace now wants.

    `missing`: workloads with pods lacking the proxy (honouring opt-outs), or
    whose proxy came from another revision than the one now wanted. `all`:
    every workload not opted out. `none`: nothing.
    """
    plan = RestartPlan()
    if policy == "none":
        return plan
    states = [inventory.pod_state(snapshot, p, future_ns) for p in inventory.live_pods(snapshot, namespace)]
    want = wanted_revision(future_ns)
    grouped = {g.ref: g for g in inventory.by_workload(states)}
    for workload in snapshot.workloads(namespace):
        ref = WorkloadRef(workload["kind"], namespace, mesh.name_of(workload))
        if mesh.template_opted_out(workload):
            continue
        group = grouped.pop(ref, None)
        pods = group.pods if group else []
        missing = [p.name for p in pods if p.missing_sidecar]
        stale = [p.name for p in pods if p.has_sidecar and pod_revision(p.pod) not in (None, want)]
        if missing:
            lacking = english.of_total(len(missing), len(pods), "pod", "lacks")
            plan.restarts.append(Restart(ref, f"{lacking} istio-proxy", missing))
        elif stale:
            having = f"{english.count(len(stale), 'pod')} {english.agree(len(stale), 'has')}"
            plan.restarts.append(Restart(ref, f"{having} a proxy from another revision than {want}", stale))
        elif policy == "all":
            plan.restarts.append(Restart(ref, "--restart all", [p.name for p in pods]))
    for group in grouped.values():  # pods whose owner is not a Deployment/StatefulSet/DaemonSet
        plan.orphans.extend(p for p in group.pods if p.missing_sidecar)
    return plan


def disable_restarts(snapshot: Snapshot, namespace: str, policy: str) -> RestartPlan:
    """Workloads whose pods still carry the proxy (`meshed`), or all of them."""
    plan = RestartPlan()
    if policy == "none":
        return plan
    states = inventory.namespace_pods(snapshot, namespace)
    grouped = {g.ref: g for g in inventory.by_workload(states)}
    for workload in snapshot.workloads(namespace):
        ref = WorkloadRef(workload["kind"], namespace, mesh.name_of(workload))
        group = grouped.pop(ref, None)
        meshed = [p.name for p in group.meshed] if group else []
        if meshed:
            plan.restarts.append(Restart(ref, f"{english.count(len(meshed), 'pod')} still "
                                         f"{english.agree(len(meshed), 'carries')} istio-proxy", meshed))
        elif policy == "all":
            plan.restarts.append(Restart(ref, "--restart all", []))
    for group in grouped.values():
        plan.orphans.extend(group.meshed)
    return plan
