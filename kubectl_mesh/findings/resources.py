"""Sidecar resources: the guide's "high latency after mesh enablement" row.

Thresholds: Istio's own default requests for the proxy, 100m CPU and 128Mi
memory. A proxyCPU or proxyCPULimit below 100m, or a proxyMemory or
proxyMemoryLimit below 128Mi, is too low (the proxy is throttled or
OOM-killed under load); a value that is not a Kubernetes quantity, or a limit
below its request, is invalid (the injector cannot honour it).
"""

from __future__ import annotations

from decimal import Decimal

from kubectl_mesh import mesh
from kubectl_mesh.errors import UsageError
from kubectl_mesh.findings.index import MeshIndex
from kubectl_mesh.findings.model import ERROR, WARNING, Found, Ref, check
from kubectl_mesh.mesh import name_of, namespace_of
from kubectl_mesh.text import command
from kubectl_mesh.validate import parse_quantity

ROW = "High latency after mesh enablement"
PREFIX = "sidecar.istio.io/"
CPU_MIN = Decimal("0.1")  # 100m
MEMORY_MIN = Decimal(128 * 2**20)  # 128Mi
# annotation -> (resource, request|limit)
ANNOTATIONS = {
    "proxyCPU": ("cpu", "request"),
    "proxyCPULimit": ("cpu", "limit"),
    "proxyMemory": ("memory", "request"),
    "proxyMemoryLimit": ("memory", "limit"),
}
MINIMUM = {"cpu": (CPU_MIN, "100m"), "memory": (MEMORY_MIN, "128Mi")}
KEYS = frozenset(PREFIX + short for short in ANNOTATIONS)


def _meshed_targets(index: MeshIndex) -> list[tuple[Ref, dict]]:
    """(Ref, annotations) of each meshed workload's pod template, and of meshed pods
    that no workload of the snapshot owns, that carry a proxy resource annotation
    (the others cannot have a finding); computed once for both checks."""
    cached = index.cache.get("meshed-targets")
    if cached is None:
        cached = index.cache["meshed-targets"] = list(_find_meshed_targets(index))
    return cached


def _find_meshed_targets(index: MeshIndex):
    owned = set()
    for workload in index.snapshot.workloads():
        ns = namespace_of(workload)
        owned.add((workload["kind"], ns, name_of(workload)))
        metadata = mesh.template_meta(workload)
        if KEYS.isdisjoint(metadata.get("annotations") or {}):
            continue  # most workloads: whether meshed or not, nothing to check
        template = {"kind": "Pod", "metadata": metadata, "spec": mesh.pod_spec(workload)}
        ns_obj = index.snapshot.namespace(ns)
        unknown_ns = ns_obj is None and index.offline
        if mesh.has_sidecar(template) or mesh.expects_sidecar(template, ns_obj) or (
                unknown_ns and not mesh.opted_out(template)):
            yield Ref(workload["kind"], ns, name_of(workload)), mesh.annotations_of(template)
    for ns in index.namespaces():
        for pod in index.live_pods(ns):
            notes = mesh.annotations_of(pod)
            if KEYS.isdisjoint(notes) or not mesh.has_sidecar(pod):
                continue
            ref = index.snapshot.workload_of(pod)
            if ref is not None and (ref.kind, ref.namespace, ref.name) in owned:
                continue
            yield Ref("Pod", ns, name_of(pod)), notes


def _problems(annotations: dict) -> tuple[list[str], list[str]]:
    """(invalid, too low) descriptions for the proxy resource annotations."""
    invalid, low = [], []
    values: dict[str, Decimal] = {}
    for short, (resource, _) in ANNOTATIONS.items():
        raw = annotations.get(PREFIX + short)
        if raw is None:
            continue
        try:
            amount = parse_quantity(str(raw))
        except UsageError:
            invalid.append(f'{short}="{raw}" is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1Gi)')
            continue
        if amount <= 0:
            invalid.append(f'{short}="{raw}" must be greater than zero')
            continue
        values[short] = amount
        minimum, shown = MINIMUM[resource]
        if amount < minimum:
            low.append(f"{short}={raw} is below {shown}")
    for request, limit in (("proxyCPU", "proxyCPULimit"), ("proxyMemory", "proxyMemoryLimit")):
        if request in values and limit in values and values[limit] < values[request]:
            invalid.append(f"{limit}={annotations[PREFIX + limit]} is below {request}="
                           f"{annotations[PREFIX + request]} (a limit may not be below its request)")
    return invalid, low


def _suggest(annotations: dict) -> str:
    """The sidecar-resources options that fix the annotations: valid values at or above
    the thresholds kept, others raised to them, a limit never below its request."""
    def parsed(short: str) -> Decimal | None:
        raw = annotations.get(PREFIX + short)
        try:
            return parse_quantity(str(raw)) if raw is not None else None
        except UsageError:
            return None

    options = []
    for resource, request, limit in (("cpu", "proxyCPU", "proxyCPULimit"),
                                     ("memory", "proxyMemory", "proxyMemoryLimit")):
        minimum, shown = MINIMUM[resource]
        value = parsed(request)
        if value is not None and value >= minimum:
            request_text, request_value = str(annotations[PREFIX + request]), value
        else:
            request_text, request_value = shown, minimum
        options += [f"--{resource}", request_text]
        if PREFIX + limit in annotations:
            limit_value = parsed(limit)
            if limit_value is not None and limit_value >= max(request_value, minimum):
                options += [f"--{resource}-limit", str(annotations[PREFIX + limit])]
            else:
                options += [f"--{resource}-limit", request_text]
    return options


def _fix_command(ref: Ref, annotations: dict) -> str:
    values = _suggest(annotations)
    if ref.kind == "Pod":
        return (f"set the annotations on the pod's template (or recreate pod {ref.name} with them): "
                f"{command(*values)}")
    return command("kubectl", "mesh", "sidecar-resources", f"{ref.kind.lower()}/{ref.name}", "-n", ref.namespace,
                   *values)


@check("MESH-RES-001", "resources", "Sidecar proxy resources too low", guide=ROW)
def resources_too_low(index: MeshIndex):
    for ref, notes in _meshed_targets(index):
        _, low = _problems(notes)
        if low:
            yield Found(
                WARNING, ref,
                f"sidecar resources too low: {'; '.join(low)} (thresholds: Istio's default proxy requests, "
                "100m CPU and 128Mi memory); a starved proxy adds latency to every request",
                _fix_command(ref, notes),
                {"annotations": {k: v for k, v in notes.items() if k.startswith(PREFIX + "proxy")}},
            )


@check("MESH-RES-002", "resources", "Sidecar proxy resources invalid", istio="IST0125", guide=ROW)
def resources_invalid(index: MeshIndex):
    for ref, notes in _meshed_targets(index):
        invalid, _ = _problems(notes)
        if invalid:
            yield Found(
                ERROR, ref,
                f"sidecar resources invalid: {'; '.join(invalid)}; the injector cannot apply them",
                _fix_command(ref, notes),
                {"annotations": {k: v for k, v in notes.items() if k.startswith(PREFIX + "proxy")}},
            )
