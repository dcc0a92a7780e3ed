"""Sidecar injection: the guide's step 1, and istioctl analyze's injection
analyzers (IST0102, IST0103, IST0123, IST0148, IST0158).

istioctl and `kubectl mesh` agree on what the codes mean; where we look further
(pods of revision-labelled namespaces, an istio-proxy init container that exits,
a proxy of an older revision), the finding carries no Istio code.
"""

from __future__ import annotations

from kubectl_mesh import drift, english, inventory, mesh
from kubectl_mesh.findings.index import MeshIndex, describe_workloads, pod_name
from kubectl_mesh.findings.model import INFO, WARNING, Found, Ref, check, listing, plural
from kubectl_mesh.manifests import TEMPLATE_OF
from kubectl_mesh.mesh import DATAPLANE_LABEL, INJECTION_LABEL, REVISION_LABEL, name_of
from kubectl_mesh.meshconfig import injector_configmap_name
from kubectl_mesh.text import command

ROW = "Connection refused between services after enabling strict mTLS"


def _unlabelled(ns_obj: dict) -> bool:
    """istioctl's "not enabled for injection": no (or an empty) istio-injection label,
    no istio.io/rev label at all, not ambient."""
    labels = mesh.labels_of(ns_obj)
    return (not labels.get(INJECTION_LABEL) and REVISION_LABEL not in labels
            and labels.get(DATAPLANE_LABEL) != "ambient")


def _what_runs(index: MeshIndex, ns: str) -> str | None:
    states = index.pod_states(ns)
    if states:
        return f"these run without istio-proxy: {describe_workloads(states)}"
    if index.snapshot.workloads(ns):
        names = (f"{w['kind'].lower()}/{name_of(w)}" for w in index.snapshot.workloads(ns))
        return f"the pods of these will run without istio-proxy: {listing(names)}"
    if index.offline:
        return "pods created in it will run without istio-proxy"
    return None  # an empty namespace: nothing is outside the mesh


@check("MESH-INJ-001", "injection", "Namespace not labelled for sidecar injection", istio="IST0102", guide=ROW)
def namespace_not_injected(index: MeshIndex):
    """A non-system namespace that runs workloads (or, in manifests, is declared to
    receive them) has no injection label: its pods run without istio-proxy.
    Ambient namespaces and those explicitly labelled istio-injection=disabled are
    choices, not findings; so is a namespace Istio injects by default (MESH-INJ-004)."""
    by_default = index.mesh.enables_namespaces_by_default()
    if by_default:
        return
    for ns_obj in index.snapshot.of_kind("Namespace"):
        ns = name_of(ns_obj)
        if mesh.is_system_namespace(ns) or not _unlabelled(ns_obj):
            continue
        what = _what_runs(index, ns)
        if what is None:
            continue
        caveat = ""
        if by_default is None:
            caveat = (f" (unless Istio injects unlabelled namespaces by default: {index.mesh.unknown_why})")
        yield Found(
            INFO, Ref("Namespace", None, ns),
            f"namespace {ns} is not labelled for sidecar injection (no istio-injection or istio.io/rev "
            f"label): {what}{caveat}",
            f"if it belongs in the mesh: {command('kubectl', 'mesh', 'enable', ns)}\n"
            f"(that is: {command('kubectl', 'label', 'namespace', ns, 'istio-injection=enabled')}, then "
            f"{command('kubectl', 'rollout', 'restart', 'deployment', '-n', ns)})",
        )


@check("MESH-INJ-004", "injection", "Namespace injected by default", istio="IST0148", guide=ROW)
def namespace_injected_by_default(index: MeshIndex):
    """istioctl's NamespaceInjectionEnabledByDefault: Istio was installed with
    sidecarInjectorWebhook.enableNamespacesByDefault, so a namespace with no label is
    injected all the same; label it to make that explicit (or disabled to opt out)."""
    if not index.mesh.enables_namespaces_by_default():
        return
    source = index.mesh.injector(None).source
    for ns_obj in index.snapshot.of_kind("Namespace"):
        ns = name_of(ns_obj)
        if mesh.is_system_namespace(ns) or not _unlabelled(ns_obj) or _what_runs(index, ns) is None:
            continue
        yield Found(
            INFO, Ref("Namespace", None, ns),
            f"namespace {ns} has no injection label, but Istio injects it: enableNamespacesByDefault is true "
            f"in {source}",
            f"say so explicitly: {command('kubectl', 'label', 'namespace', ns, 'istio-injection=enabled')} "
            "(or istio-injection=disabled to keep it out of the mesh)",
            {"source": source},
        )


def _injection_reason(ns_obj: dict | None, ns: str, by_default: bool) -> str:
    labels = mesh.labels_of(ns_obj or {})
    mode = mesh.injection_mode(ns_obj)
    if mode == "enabled":
        return f"namespace {ns} is labelled istio-injection=enabled"
    if mode == "revision":
        return f"namespace {ns} is labelled istio.io/rev={labels.get(REVISION_LABEL)}"
    if mode == "none" and by_default:
        return f"Istio injects namespace {ns} by default (enableNamespacesByDefault)"
    return "the pods ask for injection (sidecar.istio.io/inject=true or istio.io/rev)"


def _istioctl_checks_pods_of(ns_obj: dict | None) -> bool:
    """istioctl looks for missing proxies only in istio-injection=enabled namespaces
    that are not also ambient."""
    labels = mesh.labels_of(ns_obj or {})
    return labels.get(INJECTION_LABEL) == "enabled" and labels.get(DATAPLANE_LABEL) != "ambient"


def _restart(ref, ns: str, names: list[str]) -> str:
    if ref.kind == "Pod":
        return (f"recreate it: {command('kubectl', 'get', 'pod', ref.name, '-n', ns, '-o', 'yaml')} > pod.yaml "
                "&& kubectl replace --force -f pod.yaml")
    if ref.restartable:
        return command("kubectl", "rollout", "restart", f"{ref.kind.lower()}/{ref.name}", "-n", ns)
    return (f"delete its pods so that {ref.kind.lower()}/{ref.name} recreates them: "
            f"{command('kubectl', 'delete', 'pod', '-n', ns, *names)}")


@check("MESH-INJ-002", "injection", "Pod missing its sidecar in an injected namespace",
       istio="IST0103", guide=ROW)
def pod_missing_proxy(index: MeshIndex):
    """Pods Istio would inject now but that have no istio-proxy: created before the
    namespace was labelled. Named with the workload to restart. istioctl reports
    them (IST0103) in istio-injection=enabled namespaces; those of revision-labelled
    or injected-by-default namespaces are ours alone (no Istio code)."""
    by_default = bool(index.mesh.enables_namespaces_by_default())
    for ns in index.namespaces():
        if mesh.is_system_namespace(ns):
            continue
        ns_obj = index.snapshot.namespace(ns)
        default_injected = by_default and ns_obj is not None and _unlabelled(ns_obj)
        missing = [s for s in index.bare_states(ns)
                   if (s.missing_sidecar or (default_injected and not s.opted_out))
                   and drift.proxy_container(s.pod) is None]  # an exited init container: MESH-INJ-006
        if not missing:
            continue
        why = _injection_reason(ns_obj, ns, by_default)
        code = "IST0103" if _istioctl_checks_pods_of(ns_obj) else None
        for group in inventory.by_workload(missing):
            ref = group.ref
            names = [pod_name(p.pod) for p in group.pods]
            if ref.kind == "Pod":
                yield Found(
                    WARNING, Ref("Pod", ns, ref.name),
                    f"pod {ref.name} has no istio-proxy although {why}; it was created before injection "
                    "was enabled, and it has no controller to recreate it",
                    _restart(ref, ns, names), {"pods": names}, istio=code,
                )
                continue
            total = index.workload_pod_count(ref)
            yield Found(
                WARNING, Ref(ref.kind, ns, ref.name),
                f"{english.of_total(len(group.pods), total, 'pod')} of {ref} {english.agree(len(group.pods), 'has')} "
                f"no istio-proxy although "
                f"{why}: {listing(names)} (created before injection was enabled)",
                _restart(ref, ns, names), {"pods": names}, istio=code,
            )


@check("MESH-INJ-006", "injection", "istio-proxy init container that does not keep running", guide=ROW)
def proxy_init_container_exits(index: MeshIndex):
    """A native sidecar is an init container with restartPolicy Always; without it,
    istio-proxy runs to completion before the app starts, so the pod is not in the
    mesh. istioctl counts any istio-proxy init container as the proxy and reports
    nothing (no IST0103); `kubectl mesh` counts it as missing, as verify does."""
    for ns in index.namespaces():
        if mesh.is_system_namespace(ns):
            continue
        exited = [s for s in index.bare_states(ns) if drift.proxy_container(s.pod) is not None]
        for group in inventory.by_workload(exited):
            names = [pod_name(p.pod) for p in group.pods]
            ref = group.ref
            subject = Ref(ref.kind, ns, ref.name)
            yield Found(
                WARNING, subject,
                f"{describe_workloads(group.pods)}: istio-proxy is an init container without restartPolicy: "
                "Always, so it exits before the app starts and the pod is not in the mesh (istioctl analyze "
                "counts it as injected)",
                "re-inject the pods with the injector's template (do not copy istio-proxy into the pod spec by "
                "hand): " + _restart(ref, ns, names),
                {"pods": names},
            )


def _conflicting_labels(ns_obj: dict) -> list[str]:
    """istioctl's IST0123: istio-injection (any value) with istio.io/rev or
    istio.io/dataplane-mode, these two counted only when istio-injection is absent
    or enabled (an explicit istio-injection=disabled overrides them)."""
    labels = mesh.labels_of(ns_obj)
    found = []
    if INJECTION_LABEL in labels:
        found.append(f"{INJECTION_LABEL}={labels[INJECTION_LABEL]}")
    if INJECTION_LABEL not in labels or labels[INJECTION_LABEL] == "enabled":
        found.extend(f"{key}={labels[key]}" for key in (REVISION_LABEL, DATAPLANE_LABEL) if key in labels)
    return found if len(found) > 1 else []


@check("MESH-INJ-003", "injection", "Several injection labels on one namespace", istio="IST0123")
def multiple_injection_labels(index: MeshIndex):
    for ns_obj in index.snapshot.of_kind("Namespace"):
        ns = name_of(ns_obj)
        if ns == index.snapshot.root_namespace:
            continue
        labels = _conflicting_labels(ns_obj)
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


def _drifted(index: MeshIndex, ns: str) -> list[drift.ProxyDrift]:
    """The running pods of a namespace whose proxy the injector would inject
    differently now (computed once for both checks; nothing for namespaces no
    revision injects, or pods planned from manifests)."""
    cache = index.cache.setdefault("drift", {})
    if ns not in cache:
        ns_obj = index.snapshot.namespace(ns)
        found = []
        if drift.namespace_revision(ns_obj, index.mesh) is not None:
            for pod in index.live_pods(ns):
                if TEMPLATE_OF not in pod:
                    d = drift.pod_drift(pod, ns_obj, index.mesh)
                    if d is not None:
                        found.append(d)
        cache[ns] = found
    return cache[ns]


def _restarts(index: MeshIndex, ns: str, pods: list[dict]) -> str:
    states = [inventory.pod_state(index.snapshot, p, index.snapshot.namespace(ns)) for p in pods]
    return "; ".join(_restart(g.ref, ns, [pod_name(s.pod) for s in g.pods]) for g in inventory.by_workload(states))


@check("MESH-INJ-005", "injection", "Pods whose proxy image differs from the injector's", istio="IST0158")
def proxy_image_drift(index: MeshIndex):
    """istioctl's PodsIstioProxyImageMismatchInNamespace: after an upgrade of the
    control plane the injector gives a new image, but running pods keep the one they
    were created with until they are restarted. A pod that sets its own image
    (sidecar.istio.io/proxyImage) is left alone; a variant of the same release
    (-distroless, -debug) is the same image."""
    for ns in index.namespaces():
        found = [d for d in _drifted(index, ns) if d.image_differs]
        if not found:
            continue
        expected = found[0].expected_image
        injector = index.mesh.injector(found[0].expected_revision)
        pods = [d.pod for d in found]
        images = sorted({d.image for d in found})
        yield Found(
            WARNING, Ref("Namespace", None, ns),
            f"{plural(len(pods), 'pod')} in {ns} run{'s' if len(pods) == 1 else ''} an istio-proxy image "
            f"({', '.join(images)}) other than the one the injector gives now ({expected}, from "
            f"{injector.source if injector else injector_configmap_name(found[0].expected_revision)}): "
            f"{listing(name_of(p) for p in pods)}; they keep the old proxy until restarted",
            "restart them to get the new proxy: " + _restarts(index, ns, pods),
            {"pods": [name_of(p) for p in pods], "images": images, "expectedImage": expected},
        )


@check("MESH-INJ-007", "injection", "Pods injected by another revision than their namespace's")
def proxy_revision_drift(index: MeshIndex):
    """A namespace moved to a new revision (istio.io/rev) keeps pods injected by the
    old one, connected to the old control plane, until they are restarted."""
    for ns in index.namespaces():
        found = [d for d in _drifted(index, ns) if d.revision_differs]
        if not found:
            continue
        pods = [d.pod for d in found]
        old = sorted({str(d.revision) for d in found})
        yield Found(
            WARNING, Ref("Namespace", None, ns),
            f"{plural(len(pods), 'pod')} in {ns} {'was' if len(pods) == 1 else 'were'} injected by revision "
            f"{', '.join(old)}, but the namespace now uses revision {found[0].expected_revision}: "
            f"{listing(name_of(p) for p in pods)}",
            "restart them so the new revision injects them: " + _restarts(index, ns, pods),
            {"pods": [name_of(p) for p in pods], "revisions": old, "expectedRevision": found[0].expected_revision},
        )
