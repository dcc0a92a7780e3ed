"""Istio sidecar injection, applied at pod creation like Istio's mutating webhook.

Which pods are injected (namespace label ``istio-injection`` / ``istio.io/rev``, pod label
``sidecar.istio.io/inject``, hostNetwork) and what the result looks like (``istio-init``,
``istio-proxy`` as a container or, for native sidecars, as an init container with
``restartPolicy: Always``; status annotation, labels, resources from the ``proxy*``
annotations) follow Istio's injector; the container bodies come from
``tests/data/cluster/sidecar-template.yaml`` (taken from Istio's own injector output).
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import yaml

from .quantity import canonicalize_resources
from .registry import DATA_DIR

# The Istio release the server plays: istiod runs it (image and app.kubernetes.io/version, as
# Istio's charts label it) and its injector gives pods this proxy.
ISTIO_VERSION = "1.32.0"
PROXY_IMAGE = f"docker.io/istio/proxyv2:{ISTIO_VERSION}"
TEMPLATE_FILE = DATA_DIR / "cluster" / "sidecar-template.yaml"

DEFAULT_PROXY_RESOURCES = {
    "limits": {"cpu": "2", "memory": "1Gi"},
    "requests": {"cpu": "100m", "memory": "128Mi"},
}

VOLUME_NAMES = [
    "workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data",
    "istio-podinfo", "istio-token", "istiod-ca-cert", "istio-ca-crl",
]

# Namespaces Istio's webhook configuration never selects.
IGNORED_NAMESPACES = {"kube-system", "kube-public"}


@functools.lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    with open(TEMPLATE_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def injection_revision(
    namespace_labels: dict[str, str], pod_labels: dict[str, str], revisions: set[str]
) -> str | None:
    """The Istio revision whose webhook would inject this pod, or None.

    Mirrors the selectors of Istio's default and per-revision webhooks: a namespace's
    ``istio-injection`` label wins over ``istio.io/rev``; an unlabelled namespace can still
    opt pods in with ``sidecar.istio.io/inject=true`` or a pod ``istio.io/rev`` label.
    """
    if pod_labels.get("sidecar.istio.io/inject") == "false":
        return None
    ns_inject = namespace_labels.get("istio-injection")
    if ns_inject is not None:
        if ns_inject == "enabled" and "default" in revisions:
            return "default"
        return None
    ns_rev = namespace_labels.get("istio.io/rev")
    if ns_rev is not None:
        return ns_rev if ns_rev in revisions else None
    pod_rev = pod_labels.get("istio.io/rev")
    if pod_rev is not None:
        return pod_rev if pod_rev in revisions else None
    if pod_labels.get("sidecar.istio.io/inject") == "true" and "default" in revisions:
        return "default"
    return None


def should_inject(pod: dict[str, Any], namespace_labels: dict[str, str], revisions: set[str]) -> str | None:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if meta.get("namespace") in IGNORED_NAMESPACES:
        return None
    if spec.get("hostNetwork"):
        return None
    annotations = meta.get("annotations") or {}
    if "sidecar.istio.io/status" in annotations:
        return None  # already injected
    if annotations.get("sidecar.istio.io/inject") == "false":
        return None
    # A manifest that already carries the proxy (pre-injected, e.g. `istioctl kube-inject`).
    names = {c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    if "istio-proxy" in names:
        return None
    return injection_revision(namespace_labels, meta.get("labels") or {}, revisions)


def workload_of(pod: dict[str, Any]) -> tuple[str, str]:
    """(workload name, ISTIO_META_OWNER) as Istio derives them from the pod's owner."""
    meta = pod["metadata"]
    ns = meta.get("namespace", "default")
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ReplicaSet":
            hash_ = (meta.get("labels") or {}).get("pod-template-hash")
            if hash_ and name.endswith("-" + hash_):
                dep = name[: -len(hash_) - 1]
                return dep, f"kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{dep}"
            return name, f"kubernetes://apis/apps/v1/namespaces/{ns}/replicasets/{name}"
        if kind in ("StatefulSet", "DaemonSet"):
            plural = kind.lower() + "s"
            return name, f"kubernetes://apis/apps/v1/namespaces/{ns}/{plural}/{name}"
        return name, f"kubernetes://apis/v1/namespaces/{ns}/pods/{meta.get('name') or name}"
    name = meta.get("name") or meta.get("generateName", "").rstrip("-")
    return name, f"kubernetes://apis/v1/namespaces/{ns}/pods/{name}"


def _pod_ports(containers: list[dict]) -> str:
    ports = []
    for c in containers:
        for p in c.get("ports") or []:
            # Field order of Go's ContainerPort, as Istio's structToJSON prints it.
            ordered = {k: p[k] for k in ("name", "hostPort", "containerPort", "protocol", "hostIP") if k in p}
            ports.append(json.dumps(ordered, separators=(",", ":")))
    if not ports:
        return "[\n]"
    return "[\n    " + "\n    ,".join(ports) + "\n]"


def proxy_resources(annotations: dict[str, str]) -> dict[str, Any]:
    """Proxy resources: the mesh defaults, or only what the ``sidecar.istio.io/proxy*``
    annotations ask for when any of them is set (Istio's template works that way)."""
    keys = {
        ("requests", "cpu"): "sidecar.istio.io/proxyCPU",
        ("requests", "memory"): "sidecar.istio.io/proxyMemory",
        ("limits", "cpu"): "sidecar.istio.io/proxyCPULimit",
        ("limits", "memory"): "sidecar.istio.io/proxyMemoryLimit",
    }
    if not any(a in annotations for a in keys.values()):
        return copy.deepcopy(DEFAULT_PROXY_RESOURCES)
    out: dict[str, dict[str, str]] = {}
    for (section, res), ann in keys.items():
        if ann in annotations:
            out.setdefault(section, {})[res] = annotations[ann]
    return canonicalize_resources({k: out[k] for k in ("limits", "requests") if k in out})


def inject(pod: dict[str, Any], revision: str, native_sidecars: bool) -> dict[str, Any]:
    """Return the pod with Istio's sidecar injected (the input is not modified)."""
    pod = copy.deepcopy(pod)
    meta = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    annotations = meta.setdefault("annotations", {})
    labels = meta.setdefault("labels", {})
    native = native_sidecars
    if annotations.get("sidecar.istio.io/nativeSidecar") in ("true", "false"):
        native = annotations["sidecar.istio.io/nativeSidecar"] == "true"

    app_containers = spec.get("containers") or []
    workload, owner = workload_of(pod)
    tmpl = _template()
    resources = proxy_resources(annotations)

    init = copy.deepcopy(tmpl["initContainer"])
    init["image"] = PROXY_IMAGE
    init["resources"] = copy.deepcopy(resources)

    proxy = copy.deepcopy(tmpl["proxyContainer"])
    proxy["image"] = PROXY_IMAGE
    proxy["resources"] = copy.deepcopy(resources)
    values = {
        "ISTIO_META_POD_PORTS": _pod_ports(app_containers),
        "ISTIO_META_APP_CONTAINERS": ",".join(c.get("name", "") for c in app_containers),
        "ISTIO_META_WORKLOAD_NAME": workload,
        "ISTIO_META_OWNER": owner,
    }
    for env in proxy.get("env", []):
        if env["name"] in values:
            env["value"] = values[env["name"]]
    # Key order as Kubernetes serialises containers (the template is alphabetical already).
    if native:
        proxy["restartPolicy"] = "Always"
        proxy = dict(sorted(proxy.items()))
    else:
        proxy.pop("lifecycle", None)

    inits = [c for c in spec.get("initContainers") or [] if c.get("name") not in ("istio-init", "istio-proxy")]
    containers = [c for c in app_containers if c.get("name") != "istio-proxy"]
    if native:
        # Native sidecars: istio-init, then the proxy, then the pod's own init containers,
        # so they run inside the mesh (Istio's reorderPod).
        spec["initContainers"] = [init, proxy] + inits
        spec["containers"] = containers
    else:
        spec["initContainers"] = inits + [init]
        spec["containers"] = containers + [proxy]

    # Istio merges the pod onto its template: the template's volumes first, the pod's own after
    # (a pod volume of the same name replaces the template's).
    volumes = copy.deepcopy(tmpl["volumes"])
    for v in spec.get("volumes") or []:
        idx = next((i for i, t in enumerate(volumes) if t["name"] == v.get("name")), None)
        if idx is None:
            volumes.append(v)
        else:
            volumes[idx] = v
    spec["volumes"] = volumes

    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault(
        "service.istio.io/canonical-name",
        labels.get("app.kubernetes.io/name") or labels.get("app") or workload,
    )
    labels.setdefault(
        "service.istio.io/canonical-revision",
        labels.get("app.kubernetes.io/version") or labels.get("version") or "latest",
    )
    first = app_containers[0]["name"] if app_containers else "istio-proxy"
    annotations.setdefault("kubectl.kubernetes.io/default-container", first)
    annotations.setdefault("kubectl.kubernetes.io/default-logs-container", first)
    annotations.setdefault("prometheus.io/path", "/stats/prometheus")
    annotations.setdefault("prometheus.io/port", "15020")
    annotations.setdefault("prometheus.io/scrape", "true")
    annotations["istio.io/rev"] = revision
    status = {
        "initContainers": ["istio-init", "istio-proxy"] if native else ["istio-init"],
        "containers": None if native else ["istio-proxy"],
        "volumes": VOLUME_NAMES,
        "imagePullSecrets": None,
        "revision": revision,
    }
    annotations["sidecar.istio.io/status"] = json.dumps(status, separators=(",", ":"))
    meta["annotations"] = dict(sorted(annotations.items()))
    meta["labels"] = dict(sorted(labels.items()))
    return pod
