"""Istio annotations on the objects the guide touches: unknown (IST0108), on the
wrong kind of object (IST0107), deprecated (IST0135), or with a value of the
wrong format (IST0125), as istioctl analyze's annotation analyzer checks
Namespaces, Services, Pods and Deployments.

Pods are checked by what they run: a bare pod on its own, the pods of a
workload (or, offline, its pod template) once, on the workload, so that a
Deployment of 50 replicas is one finding and not 50. A workload's own
metadata is checked too: a pod annotation there does nothing (IST0107).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubectl_mesh import mesh
from kubectl_mesh.findings.annotation_specs import (
    ANNOTATIONS,
    ANY,
    DEPRECATION_NOTE,
    FORMATS,
    ISTIOCTL_VALIDATES,
    POD,
    RESOURCE_ANNOTATIONS,
    is_istio_annotation,
)
from kubectl_mesh.findings.index import MeshIndex
from kubectl_mesh.findings.model import INFO, WARNING, Found, Ref, check
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import annotations_of, name_of, namespace_of
from kubectl_mesh.text import command

ROW = "High latency after mesh enablement"


@dataclass(frozen=True)
class Placed:
    """Annotations as they sit on one object: the Ref findings go to, the kind they
    are checked as, and where they are (for the message)."""

    ref: Ref
    kind: str  # "Pod", "Service", "Namespace", "Deployment", ...
    where: str  # "" or " (in its pod template)"
    annotations: dict
    labels: dict


def _placements(index: MeshIndex) -> list[Placed]:
    cached = index.cache.get("annotation-placements")
    if cached is None:
        cached = index.cache["annotation-placements"] = list(_find_placements(index))
    return cached


def _find_placements(index: MeshIndex) -> Iterable[Placed]:
    snap = index.snapshot
    for ns_obj in snap.of_kind("Namespace"):
        yield Placed(Ref("Namespace", None, name_of(ns_obj)), "Namespace", "", annotations_of(ns_obj),
                     mesh.labels_of(ns_obj))
    for service in snap.of_kind("Service"):
        yield Placed(Ref("Service", namespace_of(service), name_of(service)), "Service", "",
                     annotations_of(service), mesh.labels_of(service))
    for workload in snap.workloads():
        yield Placed(Ref(workload["kind"], namespace_of(workload), name_of(workload)), workload["kind"], "",
                     annotations_of(workload), mesh.labels_of(workload))
    seen = set()
    for ns in index.namespaces():
        for pod in index.live_pods(ns):
            notes = annotations_of(pod)
            if not any(is_istio_annotation(a) for a in notes):
                continue
            owner = snap.workload_of(pod)
            if owner is None or owner.kind == "Pod":
                yield Placed(Ref("Pod", ns, name_of(pod)), POD, "", notes, mesh.labels_of(pod))
                continue
            # A workload's pods once: the first pod stands for its template.
            key = (owner.kind, ns, owner.name)
            if key in seen:
                continue
            seen.add(key)
            where = " (in its pod template)" if TEMPLATE_OF in pod else " (on its pods)"
            yield Placed(Ref(owner.kind, ns, owner.name), POD, where, notes, mesh.labels_of(pod))


def _istio_annotations(placed: Placed):
    for name in sorted(placed.annotations):
        if is_istio_annotation(name):
            yield name, placed.annotations[name]


@check("MESH-ANN-001", "annotations", "Unknown Istio annotation", istio="IST0108")
def unknown_annotation(index: MeshIndex):
    for placed in _placements(index):
        for name, _ in _istio_annotations(placed):
            if name in ANNOTATIONS:
                continue
            yield Found(
                WARNING, placed.ref,
                f"unknown Istio annotation {name}{placed.where}: Istio ignores it (a typo?)",
                f"correct or remove it: {_remove(placed, name)}",
                {"annotation": name},
            )


@check("MESH-ANN-002", "annotations", "Istio annotation on the wrong kind of object", istio="IST0107")
def misplaced_annotation(index: MeshIndex):
    for placed in _placements(index):
        for name, _ in _istio_annotations(placed):
            spec = ANNOTATIONS.get(name)
            if spec is None or ANY in spec[0] or placed.kind in spec[0]:
                continue
            kinds = ", ".join(spec[0])
            fix = f"move it to the {kinds}" + (
                " (the pod template's metadata.annotations, spec.template.metadata.annotations)"
                if POD in spec[0] and placed.ref.kind in mesh.WORKLOAD_KINDS else "")
            yield Found(
                WARNING, placed.ref,
                f"annotation {name} can only be applied to {kinds}, not a {placed.kind}{placed.where}: "
                "there it does nothing",
                fix,
                {"annotation": name, "belongsOn": list(spec[0])},
            )


@check("MESH-ANN-003", "annotations", "Deprecated Istio annotation", istio="IST0135")
def deprecated_annotation(index: MeshIndex):
    for placed in _placements(index):
        for name, _ in _istio_annotations(placed):
            spec = ANNOTATIONS.get(name)
            if spec is None or not spec[1]:
                continue
            if name == "sidecar.istio.io/inject" and name in placed.labels:
                continue  # the label is there too: kept for older installations, knowingly
            yield Found(
                INFO, placed.ref,
                f'annotation "{name}"{placed.where} has been deprecated{DEPRECATION_NOTE.get(name, "")} and may '
                "not work in future Istio versions",
                "use the label instead (spec.template.metadata.labels for a workload)"
                if name in DEPRECATION_NOTE else "remove it (see Istio's release notes for what replaces it)",
                {"annotation": name},
            )


@check("MESH-ANN-004", "annotations", "Istio annotation with a value of the wrong format", istio="IST0125",
       guide=ROW)
def invalid_annotation(index: MeshIndex):
    """The value of an annotation placed right (a misplaced one is MESH-ANN-002) does
    not have its format; the sidecar resource annotations are MESH-RES-002's."""
    for placed in _placements(index):
        for name, value in _istio_annotations(placed):
            spec = ANNOTATIONS.get(name)
            if spec is None or name in RESOURCE_ANNOTATIONS or not (ANY in spec[0] or placed.kind in spec[0]):
                continue
            if not isinstance(value, str):
                problem = f"the value {value!r} is not a string (quote it: Kubernetes annotations are strings)"
            else:
                validate = FORMATS.get(name)
                problem = validate(value) if validate else None
            if problem is None:
                continue
            beyond = "" if name in ISTIOCTL_VALIDATES or not isinstance(value, str) else \
                " (istioctl analyze does not check this one)"
            yield Found(
                WARNING, placed.ref,
                f"invalid annotation {name}{placed.where}: {problem}{beyond}",
                "correct the value; the injector rejects or ignores it when the pod is created",
                {"annotation": name, "value": value if isinstance(value, str) else repr(value)},
            )


def _remove(placed: Placed, name: str) -> str:
    ref = placed.ref
    if placed.where:
        return f"from spec.template.metadata.annotations of {ref.kind.lower()}/{ref.name}"
    target = [ref.kind.lower(), ref.name] if ref.kind == "Namespace" else [ref.kind.lower(), ref.name, "-n",
                                                                            ref.namespace]
    return command("kubectl", "annotate", *target, name + "-")
