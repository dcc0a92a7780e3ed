"""Defaulting and validation of built-in kinds (the subset of Kubernetes' rules that tools
notice: defaulted fields kubectl shows, and the errors common mistakes produce)."""

from __future__ import annotations

import json
from typing import Any

from .errors import cause
from .quantity import canonicalize_resources
from .selectors import match_selector_object
from .validation import DNS1123_LABEL

WORKLOAD_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"}


# ----------------------------------------------------------------------------- defaults

def _default_container(c: dict[str, Any]) -> None:
    image = c.get("image", "")
    if "imagePullPolicy" not in c:
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c["resources"] = canonicalize_resources(c.get("resources") or {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


def default_pod_spec(spec: dict[str, Any], *, pod: bool) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            _default_container(c)
    if pod:
        # What the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins add.
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = sa
        spec["serviceAccount"] = sa
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        tolerations = spec.setdefault("tolerations", [])
        keys = {t.get("key") for t in tolerations if isinstance(t, dict)}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if key not in keys:
                tolerations.append({"effect": "NoExecute", "key": key, "operator": "Exists",
                                    "tolerationSeconds": 300})


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict):
        default_pod_spec(spec, pod=True)
    elif kind in WORKLOAD_KINDS and isinstance(spec, dict):
        tmpl = spec.get("template")
        if isinstance(tmpl, dict):
            tmpl.setdefault("metadata", {})
            if isinstance(tmpl.get("spec"), dict):
                default_pod_spec(tmpl["spec"], pod=False)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("replicas", 1)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
        elif kind == "ReplicaSet":
            spec.setdefault("replicas", 1)
            spec.pop("revisionHistoryLimit", None)
        elif kind == "StatefulSet":
            spec.setdefault("replicas", 1)
            spec.setdefault("podManagementPolicy", "OrderedReady")
            us = spec.setdefault("updateStrategy", {})
            us.setdefault("type", "RollingUpdate")
            if us["type"] == "RollingUpdate":
                us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault("persistentVolumeClaimRetentionPolicy",
                            {"whenDeleted": "Retain", "whenScaled": "Retain"})
        elif kind == "DaemonSet":
            us = spec.setdefault("updateStrategy", {})
            us.setdefault("type", "RollingUpdate")
            if us["type"] == "RollingUpdate":
                ru = us.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", 1)
                ru.setdefault("maxSurge", 0)
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "Namespace":
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        spec.setdefault("finalizers", ["kubernetes"])
        obj["spec"] = spec
        obj["status"] = {"phase": "Active"}


# ----------------------------------------------------------------------------- validation

def _go_map(d: dict[str, str]) -> str:
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(d.items()))
    return "map[string]string{" + inner + "}"


def _validate_containers(spec: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(cause("FieldValueRequired", f"{prefix}.containers", "Required value"))
    seen: set[str] = set()
    for section in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(section) or []):
            path = f"{prefix}.{section}[{i}]"
            if not isinstance(c, dict):
                continue
            name = c.get("name")
            if not name:
                causes.append(cause("FieldValueRequired", f"{path}.name", "Required value"))
            elif not DNS1123_LABEL.match(name):
                causes.append(cause("FieldValueInvalid", f"{path}.name", f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character (e.g. \'my-name\',  or \'123-abc\', regex used for validation is \'[a-z0-9]([-a-z0-9]*[a-z0-9])?\')'))
            elif name in seen:
                causes.append(cause("FieldValueDuplicate", f"{path}.name", f'Duplicate value: "{name}"'))
            if name:
                seen.add(name)
            if not c.get("image"):
                causes.append(cause("FieldValueRequired", f"{path}.image", "Required value"))
            rp = c.get("restartPolicy")
            if rp is not None and (section == "containers" or rp != "Always"):
                causes.append(cause("FieldValueNotSupported" if section == "initContainers" else "FieldValueForbidden",
                                    f"{path}.restartPolicy",
                                    f'Unsupported value: "{rp}": supported values: "Always"'
                                    if section == "initContainers" else "Forbidden: may not be set for non-init containers"))
    return causes


def validate_builtin(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[dict[str, str]] = []
    if kind == "Pod":
        causes += _validate_containers(spec, "spec")
        # Pod specs are immutable apart from images and a few scheduling fields.
        if old is not None and _strip_images(old.get("spec")) != _strip_images(spec):
            causes.append(cause("FieldValueForbidden", "spec",
                                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                                "(allow it to be set to 1 if it was previously negative)"))
    elif kind in WORKLOAD_KINDS:
        selector = spec.get("selector")
        tmpl = spec.get("template") or {}
        tmpl_labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if selector is None:
            causes.append(cause("FieldValueRequired", "spec.selector", "Required value"))
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(cause("FieldValueInvalid", "spec.selector",
                                f"Invalid value: {json.dumps(selector)}: empty selector is invalid for deployment"))
        elif not match_selector_object(selector, tmpl_labels):
            causes.append(cause("FieldValueInvalid", "spec.template.metadata.labels",
                                f"Invalid value: {_go_map(tmpl_labels)}: `selector` does not match template `labels`"))
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(cause("FieldValueInvalid", "spec.replicas",
                                f"Invalid value: {replicas}: must be greater than or equal to 0"))
        causes += _validate_containers(tmpl.get("spec") or {}, "spec.template.spec")
        if old is not None:
            old_sel = (old.get("spec") or {}).get("selector")
            if selector is not None and old_sel != selector:
                causes.append(cause("FieldValueInvalid", "spec.selector",
                                    f"Invalid value: {_label_selector_go(selector)}: field is immutable"))
    elif kind == "Service":
        stype = spec.get("type", "ClusterIP")
        ports = spec.get("ports") or []
        if stype != "ExternalName" and not ports and spec.get("clusterIP") != "None":
            causes.append(cause("FieldValueRequired", "spec.ports", "Required value"))
        if len(ports) > 1:
            for i, p in enumerate(ports):
                if isinstance(p, dict) and not p.get("name"):
                    causes.append(cause("FieldValueRequired", f"spec.ports[{i}].name", "Required value"))
        for i, p in enumerate(ports):
            if isinstance(p, dict) and not isinstance(p.get("port"), int):
                causes.append(cause("FieldValueRequired", f"spec.ports[{i}].port", "Required value"))
    return causes


def _strip_images(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = json.loads(json.dumps(spec))
    for section in ("containers", "initContainers"):
        for c in out.get(section) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    out.pop("activeDeadlineSeconds", None)
    out.pop("tolerations", None)
    out.pop("terminationGracePeriodSeconds", None)
    return out


def _label_selector_go(selector: dict[str, Any]) -> str:
    ml = selector.get("matchLabels") or {}
    return "v1.LabelSelector{MatchLabels:" + _go_map(ml) + ", MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
