"""Sidecar injection: the guide's step 1, and istioctl analyze's injection analyzer."""

from __future__ import annotations

from kubectl_mesh import inventory, mesh
from kubectl_mesh.findings.index import MeshIndex, describe_workloads, pod_name
from kubectl_mesh.findings.model import INFO, WARNING, Found, Ref, check, listing, plural
from kubectl_mesh.mesh import name_of
from kubectl_mesh.text import command


@check("MESH-INJ-001", "injection", "Namespace not labelled for sidecar injection",
       istio="IST0102", guide="Connection refused between services after enabling strict mTLS")
def namespace_not_injected(index: MeshIndex):
    """A non-system namespace that runs workloads (or, in manifests, is declared to
    receive them) has no injection label: its pods run without istio-proxy.
    Ambient namespaces and those explicitly labelled istio-injection=disabled are
    choices, not findings."""
    for ns_obj in index.snapshot.of_kind("Namespace"):
        ns = name_of(ns_obj)
        if mesh.is_system_namespace(ns) or mesh.injection_mode(ns_obj) != "none":
            continue
        states = index.pod_states(ns)
        if states:
            what = f"these run without istio-proxy: {describe_workloads(states)}"
        elif index.snapshot.workloads(ns):
            names = (f"{w['kind'].lower()}/{name_of(w)}" for w in index.snapshot.workloads(ns))
            what = f"the pods of these will run without istio-proxy: {listing(names)}"
        elif index.offline:
            what = "pods created in it will run without istio-proxy"
        else:
            continue  # an empty namespace: nothing is outside the mesh
        yield Found(
            INFO, Ref("Namespace", None, ns),
            f"namespace {ns} is not labelled for sidecar injection (no istio-injection or istio.io/rev "
            f"label): {what}",
            f"if it belongs in the mesh: {command('kubectl', 'mesh', 'enable', ns)}\n"
            f"(that is: {command('kubectl', 'label', 'namespace', ns, 'istio-injection=enabled')}, then "
            f"{command('kubectl', 'rollout', 'restart', 'deployment', '-n', ns)})",
        )


@check("MESH-INJ-002", "injection", "Pod missing its sidecar in an injected namespace",
       istio="IST0103", guide="Connection refused between services after enabling strict mTLS")
def pod_missing_proxy(index: MeshIndex):
    """Pods Istio would inject now but that have no istio-proxy: created before the
    namespace was labelled. Named with the workload to restart."""
    for ns in index.namespaces():
        if mesh.is_system_namespace(ns):
            continue
        missing = [s for s in index.bare_states(ns) if s.missing_sidecar]
        if not missing:
            continue
        why = _injection_reason(index.snapshot.namespace(ns), ns)
        for group in inventory.by_workload(missing):
            ref = group.ref
            names = [pod_name(p.pod) for p in group.pods]
            if ref.kind == "Pod":
                yield Found(
                    WARNING, Ref("Pod", ns, ref.name),
                    f"pod {ref.name} has no istio-proxy although {why}; it was created before injection "
                    "was enabled, and it has no controller to recreate it",
                    f"recreate it: {command('kubectl', 'get', 'pod', ref.name, '-n', ns, '-o', 'yaml')} > pod.yaml "
                    "&& kubectl replace --force -f pod.yaml",
                    {"pods": names},
                )
                continue
            total = index.workload_pod_count(ref)
            fix = (command("kubectl", "rollout", "restart", f"{ref.kind.lower()}/{ref.name}", "-n", ns)
                   if ref.restartable
                   else f"delete its pods so that {ref.kind.lower()}/{ref.name} recreates them: "
                        f"{command('kubectl', 'delete', 'pod', '-n', ns, *names)}")
            yield Found(
                WARNING, Ref(ref.kind, ns, ref.name),
                f"{len(group.pods)} of {plural(total, 'pod')} of {ref} have no istio-proxy although "
                f"{why}: {listing(names)} (created before injection was enabled)",
                fix,
                {"pods": names},
            )


def _injection_reason(ns_obj: dict | None, ns: str) -> str:
    labels = mesh.labels_of(ns_obj or {})
    mode = mesh.injection_mode(ns_obj)
    if mode == "enabled":
        return f"namespace {ns} is labelled istio-injection=enabled"
    if mode == "revision":
        return f"namespace {ns} is labelled istio.io/rev={labels.get(mesh.REVISION_LABEL)}"
    return "the pods ask for injection (sidecar.istio.io/inject=true or istio.io/rev)"


@check("MESH-INJ-003", "injection", "Several injection labels on one namespace", istio="IST0123")
def multiple_injection_labels(index: MeshIndex):
    for ns_obj in index.snapshot.of_kind("Namespace"):
        ns = name_of(ns_obj)
        if mesh.is_system_namespace(ns):
            continue
        labels = mesh.conflicting_injection_labels(ns_obj)
        if not labels:
            continue
        winner = labels[0]
        others = [label.split("=", 1)[0] for label in labels[1:]]
        yield Found(
            WARNING, Ref("Namespace", None, ns),
            f"namespace {ns} has {len(labels)} injection labels ({', '.join(labels)}): {winner} wins, "
            f"so {' and '.join(labels[1:])} {'is' if len(labels) == 2 else 'are'} silently ignored",
            "keep the one you mean and remove the others, e.g. "
            + command("kubectl", "label", "namespace", ns, *(k + "-" for k in others)),
            {"labels": labels},
        )
