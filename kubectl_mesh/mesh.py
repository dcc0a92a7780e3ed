"""What Istio's injector and proxy mean, as pure functions over plain objects.

Objects are the dicts kubectl prints with `-o json` (or manifests as
written). Nothing here calls a tool.
"""

from __future__ import annotations

PROXY = "istio-proxy"
INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
DATAPLANE_LABEL = "istio.io/dataplane-mode"
INJECT_OPT = "sidecar.istio.io/inject"
SYSTEM_NAMESPACES = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "istio-system", "local-path-storage"}
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def name_of(obj: dict) -> str:
    return meta(obj).get("name", "")


def namespace_of(obj: dict, default: str = "default") -> str:
    return meta(obj).get("namespace") or default


def labels_of(obj: dict) -> dict:
    return meta(obj).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return meta(obj).get("annotations") or {}


def pod_spec(obj: dict) -> dict:
    """The pod spec of a Pod, or of a workload's template."""
    if obj.get("kind") == "Pod":
        return obj.get("spec") or {}
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def template_meta(workload: dict) -> dict:
    return ((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}


# -- sidecars -------------------------------------------------------------------
def sidecar_container(spec: dict) -> dict | None:
    """The istio-proxy container: a regular container (classic injection) or an
    init container with restartPolicy Always (native sidecar)."""
    for container in spec.get("containers") or []:
        if container.get("name") == PROXY:
            return container
    for container in spec.get("initContainers") or []:
        if container.get("name") == PROXY and container.get("restartPolicy") == "Always":
            return container
    return None


def has_sidecar(pod: dict) -> bool:
    return sidecar_container(pod_spec(pod)) is not None


def sidecar_layout(pod: dict) -> str | None:
    spec = pod_spec(pod)
    if any(c.get("name") == PROXY for c in spec.get("containers") or []):
        return "container"
    if sidecar_container(spec) is not None:
        return "native"
    return None


def opted_out(pod: dict) -> bool:
    """Pods Istio's webhook never injects: opted out by label (or the older
    annotation), or on the host network."""
    labels = labels_of(pod)
    if labels.get(INJECT_OPT) == "false":
        return True
    if INJECT_OPT not in labels and annotations_of(pod).get(INJECT_OPT) == "false":
        return True
    return bool(pod_spec(pod).get("hostNetwork"))


def template_opted_out(workload: dict) -> bool:
    template = {"kind": "Pod", "metadata": template_meta(workload), "spec": pod_spec(workload)}
    return opted_out(template)


def proxy_ready(pod: dict) -> bool | None:
    """Readiness of the istio-proxy container from the pod status; None when unknown."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(key) or []:
            if container.get("name") == PROXY:
                return bool(container.get("ready"))
    return None


def pod_ready(pod: dict) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def pod_terminating(pod: dict) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


# -- namespaces -----------------------------------------------------------------
def injection_labels(namespace: dict) -> dict:
    """The injection-related labels present on a namespace."""
    labels = labels_of(namespace)
    return {k: labels[k] for k in (INJECTION_LABEL, REVISION_LABEL, DATAPLANE_LABEL) if k in labels}


def injection_mode(namespace: dict | None) -> str:
    """How pods created in the namespace are treated by Istio:
    "enabled" (istio-injection=enabled), "revision" (istio.io/rev=REV),
    "disabled" (istio-injection=disabled), "ambient", or "none".

    istio-injection wins when both labels are set, as Istio's webhook does.
    """
    labels = labels_of(namespace or {})
    value = labels.get(INJECTION_LABEL)
    if value == "enabled":
        return "enabled"
    if value == "disabled":
        return "disabled"
    if labels.get(REVISION_LABEL):
        return "revision"
    if labels.get(DATAPLANE_LABEL) == "ambient":
        return "ambient"
    return "none"


def conflicting_injection_labels(namespace: dict) -> list[str]:
    """Labels that contradict each other, as istioctl analyze's IST0123 sees them:
    more than one of istio-injection=enabled, istio.io/rev, ambient mode,
    ignoring istio-injection=disabled."""
    labels = labels_of(namespace)
    present = []
    if labels.get(INJECTION_LABEL) == "enabled":
        present.append(f"{INJECTION_LABEL}={labels[INJECTION_LABEL]}")
    if INJECTION_LABEL in labels and labels[INJECTION_LABEL] != "enabled":
        return []  # explicitly disabled: nothing is injected, nothing conflicts
    if labels.get(REVISION_LABEL):
        present.append(f"{REVISION_LABEL}={labels[REVISION_LABEL]}")
    if labels.get(DATAPLANE_LABEL) == "ambient":
        present.append(f"{DATAPLANE_LABEL}=ambient")
    return present if len(present) > 1 else []


def expects_sidecar(pod: dict, namespace: dict | None) -> bool:
    """Would Istio's webhook inject this pod if it were created now?"""
    if opted_out(pod):
        return False
    mode = injection_mode(namespace)
    if mode in ("enabled", "revision"):
        return True
    if mode == "disabled":
        return False
    labels = labels_of(pod)
    return labels.get(INJECT_OPT) == "true" or bool(labels.get(REVISION_LABEL))


def is_system_namespace(name: str) -> bool:
    return name in SYSTEM_NAMESPACES or name.startswith("kube-")


# -- selectors ------------------------------------------------------------------
def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def format_labels(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
