"""What canary and circuit-breaker share: the one read, the service's traffic
objects, and the guards against several rules for one host."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_mesh import errors, traffic
from kubectl_mesh.mesh import name_of
from kubectl_mesh.report import Report, gate
from kubectl_mesh.snapshot import Snapshot, read_cluster, service_fqdn
from kubectl_mesh.text import command as shell

KINDS = ("Service", "Pod")


@dataclass
class ServiceTarget:
    snapshot: Snapshot
    namespace: str
    name: str
    service: dict
    fqdn: str
    rules: list[dict] = field(default_factory=list)
    virtual_services: list[dict] = field(default_factory=list)

    @property
    def rule(self) -> dict | None:
        """The rule Istio reads first for the host (the oldest), or None."""
        return self.rules[0] if self.rules else None

    @property
    def virtual_service(self) -> dict | None:
        return self.virtual_services[0] if self.virtual_services else None


def load(settings, runner, service: str) -> ServiceTarget:
    """One batched read of the namespace: the Service, its pods, Istio's objects."""
    namespace = settings.resolve_namespace(None, runner)
    snapshot = read_cluster(runner, namespace=namespace, kinds=KINDS, root_policies=False)
    if snapshot.istio_crds is False:
        raise errors.IstioMissing("there are no VirtualServices or DestinationRules to route with")
    found = snapshot.get("Service", namespace, service)
    if found is None:
        raise errors.NotFound(f'service "{service}" not found in namespace "{namespace}"')
    fqdn = service_fqdn(found)
    return ServiceTarget(
        snapshot=snapshot,
        namespace=namespace,
        name=service,
        service=found,
        fqdn=fqdn,
        rules=traffic.destination_rules_for(snapshot, fqdn, namespace),
        virtual_services=traffic.virtual_services_for(snapshot, fqdn, namespace),
    )


def guard_single(report: Report, target: ServiceTarget, kind: str, force: bool, why: str) -> None:
    """Refuse (exit 3) when several objects of `kind` define the host; --force uses the oldest."""
    found = target.rules if kind == "DestinationRule" else target.virtual_services
    if len(found) < 2:
        return
    names = ", ".join(name_of(o) for o in found)
    check_id = "single-destination-rule" if kind == "DestinationRule" else "single-virtual-service"
    listed = " ".join(name_of(o) for o in found)
    shown = shell("kubectl", "get", kind.lower(), "-n", target.namespace, *listed.split(), "-o", "yaml")
    hint = (f"merge them into one {kind} ({shown}); "
            f"with --force the oldest, {name_of(found[0])}, is changed")
    gate(report, force, check_id, "safety", f"{kind.lower()}/{name_of(found[0])}",
         f"{len(found)} {kind}s define host {target.fqdn}: {names}; {why}", hint,
         {"objects": [name_of(o) for o in found]})


def name_clash(target: ServiceTarget, kind: str, name: str) -> dict | None:
    """An object of `kind` named `name` that exists but is not for this host."""
    obj = target.snapshot.get(kind, target.namespace, name)
    if obj is None:
        return None
    if kind == "DestinationRule":
        return None if traffic.dr_host(obj) == target.fqdn else obj
    return None if target.fqdn in traffic.vs_hosts(obj) and traffic.applies_to_mesh(obj) else obj


def refuse_clash(report: Report, target: ServiceTarget, kind: str, name: str) -> bool:
    clash = name_clash(target, kind, name)
    if clash is None:
        return False
    if kind == "DestinationRule":
        what = f"for {traffic.dr_host(clash)}, not for {target.fqdn}"
    elif target.fqdn in traffic.vs_hosts(clash):
        what = f"for gateways only ({', '.join(clash['spec'].get('gateways') or [])}), not for the mesh's sidecars"
    else:
        what = f"for {', '.join(traffic.vs_hosts(clash)) or 'no host'}, not for {target.fqdn}"
    gate(report, False, "name-taken", "safety", f"{kind.lower()}/{name}",
         f"{kind.lower()}/{name} already exists {what}",
         f"rename it, or create a {kind} for host {target.name} yourself and run again")
    return True
