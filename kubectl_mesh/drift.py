"""Proxies that the injector would inject differently now: another image (after an
upgrade of the control plane) or another revision (after the namespace moved to a
new one). Their pods keep the old proxy until they are recreated, so their
workloads need a restart. Shared by diagnose (IST0158 and the revision view)
and the commands that restart workloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubectl_mesh import mesh
from kubectl_mesh.meshconfig import DEFAULT_REVISION, MeshSettings

PROXY_IMAGE_ANNOTATION = "sidecar.istio.io/proxyImage"
STATUS_ANNOTATION = "sidecar.istio.io/status"
# Image variants Istio publishes for every release tag: the same release, no restart.
VARIANTS = ("distroless", "debug")


def proxy_container(pod: dict) -> dict | None:
    """istio-proxy as istioctl finds it: a container or an init container, whatever
    its restartPolicy (an init container without restartPolicy Always has the
    proxy's image but does not run alongside the app)."""
    spec = mesh.pod_spec(pod)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(container, dict) and container.get("name") == mesh.PROXY:
            return container
    return None


def namespace_revision(namespace: dict | None, settings: MeshSettings | None = None) -> str | None:
    """The revision whose injector injects the namespace's pods now, or None."""
    mode = mesh.injection_mode(namespace)
    if mode == "enabled":
        return DEFAULT_REVISION
    if mode == "revision":
        return mesh.labels_of(namespace)[mesh.REVISION_LABEL]
    if mode == "none" and settings is not None and settings.enables_namespaces_by_default():
        return DEFAULT_REVISION
    return None


def same_release(image: str, expected: str, variant: str = "") -> bool:
    return image == expected or any(image == f"{expected}-{v}" for v in {variant, *VARIANTS} if v)


@dataclass(frozen=True)
class ProxyDrift:
    pod: dict
    image: str
    expected_image: str | None  # None: the injector's image is unknown
    revision: str | None  # the revision that injected the pod (sidecar.istio.io/status)
    expected_revision: str

    @property
    def image_differs(self) -> bool:
        return self.expected_image is not None and not same_release(self.image, self.expected_image)

    @property
    def revision_differs(self) -> bool:
        return self.revision is not None and self.revision != self.expected_revision


def pod_drift(pod: dict, namespace: dict | None, settings: MeshSettings, variant: str = "") -> ProxyDrift | None:
    """How the pod's proxy differs from what the injector would inject now; None when
    it does not, when the pod has no proxy, or when its image is set by the pod
    (sidecar.istio.io/proxyImage) or nothing is known about the injector."""
    container = proxy_container(pod)
    revision = namespace_revision(namespace, settings)
    if container is None or revision is None or mesh.annotations_of(pod).get(PROXY_IMAGE_ANNOTATION):
        return None
    injector = settings.injector(revision)
    expected = injector.proxy_image if injector else None
    image = str(container.get("image") or "")
    if expected is not None and same_release(image, expected, variant or settings.image_type):
        expected = None  # the same release: nothing to say about the image
    injected = injected_revision(pod)
    if mesh.REVISION_LABEL in mesh.labels_of(pod):
        injected = None  # the pod asks for its revision itself: not the namespace's to decide
    found = ProxyDrift(pod, image, expected, injected, revision)
    return found if found.image_differs or found.revision_differs else None


def injected_revision(pod: dict) -> str | None:
    """The revision that injected the pod, from the injector's sidecar.istio.io/status."""
    import json

    status = mesh.annotations_of(pod).get(STATUS_ANNOTATION)
    try:
        value = json.loads(status) if isinstance(status, str) else None
    except ValueError:
        return None
    revision = value.get("revision") if isinstance(value, dict) else None
    return revision if isinstance(revision, str) and revision else None
