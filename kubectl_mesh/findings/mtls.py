"""Strict mTLS: the guide's step 2 and its "connection refused" row."""

from __future__ import annotations

import re

from kubectl_mesh import inventory, mesh
from kubectl_mesh import mtls as modes
from kubectl_mesh.findings.index import MeshIndex, age_key, describe_workloads, pod_name
from kubectl_mesh.findings.model import ERROR, INFO, WARNING, Found, Ref, check, listing, plural
from kubectl_mesh.mesh import name_of, namespace_of
from kubectl_mesh.text import command

ROW = "Connection refused between services after enabling strict mTLS"


def _any_strict(index: MeshIndex) -> bool:
    return any(
        modes.policy_mode(p) == "STRICT"
        or any((v or {}).get("mode") == "STRICT" for v in ((p.get("spec") or {}).get("portLevelMtls") or {}).values())
        for p in index.snapshot.of_kind("PeerAuthentication")
    )


@check("MESH-MTLS-001", "mtls", "Strict mTLS in force where pods have no sidecar", guide=ROW)
def strict_without_sidecar(index: MeshIndex):
    """STRICT applies to pods that have no istio-proxy: the destination service has no
    sidecar, the guide's cause of "connection refused" after enabling strict mTLS."""
    if not _any_strict(index):
        return
    for ns in index.namespaces():
        if mesh.is_system_namespace(ns):
            continue
        bare = index.bare_states(ns)
        if not bare:
            continue
        for group in inventory.by_workload(bare):
            effective = index.mtls_mode(ns, mesh.labels_of(group.pods[0].pod))
            if not modes.strict_applies(effective):
                continue
            ref = group.ref
            where = "on some ports" if effective.mode != "STRICT" else ""
            source = effective.source if effective.mode == "STRICT" else \
                listing(sorted({s for m, s in effective.ports.values() if m == "STRICT"}))
            names = [pod_name(p.pod) for p in group.pods]
            yield Found(
                ERROR, Ref(ref.kind, ns, ref.name),
                f"STRICT mTLS is in force{(' ' + where) if where else ''} (from {_plain(source)}) but "
                f"{describe_workloads(group.pods)} has no istio-proxy: "
                f"{_why_no_sidecar(index, ns, group)}; connections between it and meshed services fail "
                "(connection refused)",
                _fix(index, ns, group),
                {"pods": names, "mtls": effective.as_dict()},
            )


def _plain(source: str) -> str:
    """PeerAuthentication ns/name (namespace-wide) -> PeerAuthentication ns/name, namespace-wide"""
    return source.replace(" (", ", ").replace(")", "")


def _why_no_sidecar(index: MeshIndex, ns: str, group: inventory.WorkloadState) -> str:
    state = group.pods[0]
    if state.opted_out:
        return "it opts out of injection (sidecar.istio.io/inject=false or hostNetwork)"
    if state.expected:
        return "it was created before injection was enabled"
    ns_obj = index.snapshot.namespace(ns)
    mode = mesh.injection_mode(ns_obj)
    if mode == "disabled":
        return f"namespace {ns} is labelled istio-injection=disabled"
    if mode == "ambient":
        return f"namespace {ns} uses ambient mode"
    return f"namespace {ns} is not labelled for injection"


def _fix(index: MeshIndex, ns: str, group: inventory.WorkloadState) -> str:
    ref = group.ref
    state = group.pods[0]
    restart = (command("kubectl", "rollout", "restart", f"{ref.kind.lower()}/{ref.name}", "-n", ns)
               if ref.restartable else f"recreate pod {ref.name} -n {ns}")
    if state.opted_out:
        return (f"remove sidecar.istio.io/inject=false from {ref}'s pod template, or exempt it with a "
                f"PERMISSIVE PeerAuthentication that selects its pods")
    if state.expected:
        return restart
    return (f"enable injection in the destination namespace and restart its pods: "
            f"{command('kubectl', 'mesh', 'enable', ns)}\n"
            f"(that is: {command('kubectl', 'label', 'namespace', ns, 'istio-injection=enabled')}; {restart})")


@check("MESH-MTLS-002", "mtls", "Strict mTLS namespace with callers outside the mesh", guide=ROW)
def strict_with_unmeshed_clients(index: MeshIndex):
    """A namespace-wide STRICT policy: workloads elsewhere that have no sidecar can no
    longer connect to its services. A warning for those whose pod spec names one of
    its services (env, args, command); info for the other workloads outside the mesh,
    which may be callers. Workloads that are themselves under STRICT are left to
    MESH-MTLS-001, whose fix also fixes them as callers."""
    if not _any_strict(index):
        return
    outside = None
    for ns in index.namespaces():
        if mesh.is_system_namespace(ns) or ns == index.snapshot.root_namespace:
            continue
        policies = modes.namespace_wide_policies(index.snapshot, ns)
        if not policies or modes.policy_mode(policies[0]) != "STRICT":
            continue
        if outside is None:
            outside = _UnmeshedCallers(index)
        count = outside.count_outside(ns)
        if not count:
            continue
        named = outside.naming(ns, [name_of(s) for s in index.snapshot.of_kind("Service", ns)])
        policy = policies[0]
        ref = Ref("PeerAuthentication", ns, name_of(policy))
        fix = ("enable injection where those callers run and restart them, e.g. "
               + "; ".join(command("kubectl", "mesh", "enable", other)
                           for other in (sorted({g.ref.namespace for g, _ in named}) if named
                                         else outside.namespaces_outside(ns))[:3])
               + f"; or keep {ns} PERMISSIVE until they are meshed: "
               + command("kubectl", "mesh", "mtls", ns, "permissive"))
        if named:
            callers = ", ".join(f"{g.ref.namespace}/{g.ref} (calls {svc}.{ns})" for g, svc in named)
            yield Found(
                WARNING, ref,
                f"STRICT mTLS in namespace {ns} refuses callers without istio-proxy, and "
                f"{plural(len(named), 'workload')} outside the mesh call{'s' if len(named) == 1 else ''} "
                f"its services: {callers}",
                fix,
                {"callers": [{"namespace": g.ref.namespace, "workload": str(g.ref), "service": svc}
                             for g, svc in named]},
            )
        else:
            listed = outside.first_outside(ns, LISTED_CALLERS)
            names = [f"{g.ref.namespace}/{g.ref}" for g in listed[:5]]
            yield Found(
                INFO, ref,
                f"STRICT mTLS in namespace {ns} refuses callers without istio-proxy; "
                f"{plural(count, 'workload')} in {listing(outside.namespaces_outside(ns))} "
                f"{'has' if count == 1 else 'have'} none and cannot call it if they need to: "
                f"{', '.join(names)}{f' and {count - len(names)} more' if count > len(names) else ''}",
                fix,
                {"possibleCallers": [{"namespace": g.ref.namespace, "workload": str(g.ref)} for g in listed],
                 "possibleCallerCount": count},
            )


# Possible callers listed in a finding's data; the count says how many there are in all
# (every STRICT namespace would otherwise copy every unmeshed workload of the cluster).
LISTED_CALLERS = 20
# "name.namespace" at the start of a host named in a pod spec (a URL, host:port, an FQDN).
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_HOST = re.compile(rf"(?<![a-z0-9-])({_LABEL})\.({_LABEL})(?![a-z0-9-])")


class _UnmeshedCallers:
    """Workloads without sidecars outside STRICT, indexed once by the hosts their pod
    specs name (env values, args, command), so each STRICT namespace looks up its own
    callers instead of searching every workload's text for every service."""

    def __init__(self, index: MeshIndex):
        self.groups = _unmeshed_callers(index)
        # namespace named -> service name -> positions in self.groups of the callers naming it
        self.by_host: dict[str, dict[str, list[int]]] = {}
        for position, (_, text) in enumerate(self.groups):
            for service, namespace in {m.groups() for m in _HOST.finditer(text.lower())}:
                self.by_host.setdefault(namespace, {}).setdefault(service, []).append(position)

        self.per_namespace: dict[str, int] = {}
        for group, _ in self.groups:
            self.per_namespace[group.ref.namespace] = self.per_namespace.get(group.ref.namespace, 0) + 1
        self.namespaces = sorted(self.per_namespace)

    def count_outside(self, ns: str) -> int:
        return len(self.groups) - self.per_namespace.get(ns, 0)

    def namespaces_outside(self, ns: str) -> list[str]:
        return [other for other in self.namespaces if other != ns]

    def first_outside(self, ns: str, limit: int) -> list[inventory.WorkloadState]:
        found = []
        for group, _ in self.groups:
            if group.ref.namespace != ns:
                found.append(group)
                if len(found) == limit:
                    break
        return found

    def naming(self, ns: str, services: list[str]) -> list[tuple[inventory.WorkloadState, str]]:
        """(caller, the first of `services` it names as SERVICE.ns), in the callers' order."""
        hosts = self.by_host.get(ns)
        if not hosts:
            return []
        first: dict[int, str] = {}
        for service in services:
            for position in hosts.get(service, ()):
                first.setdefault(position, service)
        return [(self.groups[p][0], first[p]) for p in sorted(first) if self.groups[p][0].ref.namespace != ns]


def _unmeshed_callers(index: MeshIndex) -> list[tuple[inventory.WorkloadState, str]]:
    """Workloads without sidecars outside STRICT, each with the text of its pod spec
    (env values, args, command) in which a service host may be named."""
    result = []
    for other in index.namespaces():
        if mesh.is_system_namespace(other):
            continue
        bare = index.bare_states(other)
        for group in inventory.by_workload(bare):
            if modes.strict_applies(index.mtls_mode(other, mesh.labels_of(group.pods[0].pod))):
                continue  # MESH-MTLS-001
            result.append((group, _spec_text(group.pods[0].pod)))
    return result


def _spec_text(pod: dict) -> str:
    spec = mesh.pod_spec(pod)
    words: list[str] = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        words.extend(str(v) for v in container.get("command") or [])
        words.extend(str(v) for v in container.get("args") or [])
        words.extend(str(e.get("value", "")) for e in container.get("env") or [] if isinstance(e, dict))
    return "\n".join(words)


@check("MESH-MTLS-003", "mtls", "Several namespace-wide PeerAuthentications in one namespace")
def multiple_namespace_policies(index: MeshIndex):
    """Istio applies only the oldest namespace-wide (no selector) PeerAuthentication."""
    by_ns: dict[str, list[dict]] = {}
    for policy in index.snapshot.of_kind("PeerAuthentication"):
        if modes.is_namespace_wide(policy):
            by_ns.setdefault(namespace_of(policy), []).append(policy)
    for ns, policies in sorted(by_ns.items()):
        if len(policies) < 2:
            continue
        policies.sort(key=age_key)
        first = policies[0]
        scope = "mesh-wide" if ns == index.snapshot.root_namespace else "namespace-wide"
        for ignored in policies[1:]:
            yield Found(
                WARNING, Ref("PeerAuthentication", ns, name_of(ignored)),
                f"{len(policies)} {scope} PeerAuthentications (no selector) in {ns}: Istio applies only the "
                f"oldest, {ns}/{name_of(first)} (mode {modes.policy_mode(first) or 'UNSET'}); this one "
                f"(mode {modes.policy_mode(ignored) or 'UNSET'}) is ignored",
                f"keep one: merge what you need into {ns}/{name_of(first)} and "
                + command("kubectl", "delete", "peerauthentication", name_of(ignored), "-n", ns),
                {"applied": name_of(first), "ignored": name_of(ignored)},
            )
