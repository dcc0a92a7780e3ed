"""`describe POD` computed from what kubectl mesh reads itself, for users istioctl refuses.

`istioctl x describe pod` reads istio-system and execs into istiod, which a developer with
rights in their own namespace may not do. The parts it would show that come from the
namespace's objects, the plugin computes: the Services that select the pod (and its ports),
the DestinationRules for them with the subsets the pod is in, the VirtualService routes to
them with their shares, and the pod's effective mTLS mode (or why it is unknown). What
needs the proxy's live configuration (the routes Envoy really has) is not shown.
"""

from __future__ import annotations

from kubectl_mesh import errors, mtls, traffic
from kubectl_mesh.mesh import has_sidecar, labels_of, name_of
from kubectl_mesh.snapshot import Snapshot, service_fqdn


def describe(snapshot: Snapshot, pod_name: str, namespace: str) -> tuple[list[str], dict]:
    """(text lines, data) for the pod, in the shape of `istioctl x describe pod`'s parse."""
    pod = snapshot.get("Pod", namespace, pod_name)
    if pod is None:
        if not snapshot.readable("Pod", namespace):
            denied = snapshot.denial("Pod", namespace)
            raise errors.Forbidden(f"pod {pod_name} is not readable (needs {denied.permission})")
        raise errors.NotFound(f'pods "{pod_name}" not found')
    labels = labels_of(pod)
    lines = [f"Pod: {pod_name}"]
    if not has_sidecar(pod):
        lines.append("   WARNING: pod has no istio-proxy sidecar")
    data: dict = {"pod": {"name": pod_name, "namespace": namespace, "sidecar": has_sidecar(pod)},
                  "services": [], "destinationRules": [], "virtualServices": []}
    for service in snapshot.of_kind("Service", namespace):
        selector = traffic.service_selector(service)
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        fqdn = service_fqdn(service)
        ports = [f"{p.get('name') or ''} {p.get('port')}/{p.get('protocol') or 'TCP'}".strip()
                 for p in (service.get("spec") or {}).get("ports") or []]
        lines += ["--------------------", f"Service: {name_of(service)}"]
        lines += [f"   Port: {p}" for p in ports]
        data["services"].append({"name": name_of(service), "ports": ports})
        for rule in traffic.destination_rules_for(snapshot, fqdn):
            subsets = traffic.subsets(rule)
            matching = [s.get("name") for s in subsets
                        if all(labels.get(k) == v for k, v in traffic.subset_labels(s).items())]
            others = [s.get("name") for s in subsets if s.get("name") not in matching]
            lines.append(f'DestinationRule: {name_of(rule)} for "{(rule.get("spec") or {}).get("host")}"')
            if subsets:
                lines.append(f"   Matching subsets: {', '.join(matching) or '(none)'}")
                if others:
                    lines.append(f"      (Non-matching subsets {', '.join(others)})")
            data["destinationRules"].append({"name": name_of(rule), "matchingSubsets": matching,
                                             "nonMatchingSubsets": others})
        for vs in traffic.virtual_services_for(snapshot, fqdn):
            lines.append(f"VirtualService: {name_of(vs)}")
            routes = []
            for route in (vs.get("spec") or {}).get("http") or []:
                shares = [s for s in traffic.traffic_shares(route, vs["metadata"].get("namespace", namespace))
                          if s["host"] == fqdn]
                for share in shares:
                    lines.append(f"   {share['percent']:g}% → subset {share['subset'] or '(all)'}")
                routes.append(shares)
            data["virtualServices"].append({"name": name_of(vs), "routes": routes})
    effective = mtls.workload_mode(snapshot, namespace, labels)
    lines.append("--------------------")
    if effective.unknown:
        lines.append(f"Effective PeerAuthentication: {effective.unknown_message()}")
    else:
        lines.append(f"Effective PeerAuthentication:\n   Workload mTLS mode: {effective.mode} ({effective.source})")
    data["mtls"] = effective.as_dict()
    return lines, data
