"""Which hosts a namespace sees: Services and ServiceEntries with their exportTo.

Istio's analyzers look a destination host up the way this registry does
(`util.InitServiceEntryHostMap` and `util.GetDestinationHost`): every host is
filed under each scope it is exported to (`*` all namespaces, `.` its own
namespace, a namespace name, `~` none), a Service's scopes from its
`networking.istio.io/exportTo` annotation, a ServiceEntry's from
`spec.exportTo`, either defaulting to the mesh config's
`defaultServiceExportTo` (`*` unless it says otherwise). A host is found
from a namespace when it is filed under `*`, or under the namespace itself
(or, for a config with its own exportTo, one of the namespaces it is
exported to); a wildcard entry (`*.example.com`, or `*` alone) matches
only from the scopes it is exported to, so a `hosts: ["*"]` ServiceEntry
kept to its own namespace does not make every host exist elsewhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from kubectl_mesh.mesh import annotations_of, name_of, namespace_of
from kubectl_mesh.snapshot import CLUSTER_DOMAIN

ALL, LOCAL, NONE = "*", ".", "~"
EXPORT_ANNOTATION = "networking.istio.io/exportTo"


def to_fqdn(host: str, namespace: str) -> str:
    """Istio's ConvertHostToFQDN: a name with no dot (and not a wildcard) is a
    Service of the config's namespace; anything else is taken as written."""
    if host.startswith("*") or "." in host:
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def scopes_of(export_to, own_namespace: str) -> frozenset[str]:
    """exportTo values as scopes: "." is the object's own namespace; "*" covers all."""
    scopes = {own_namespace if e == LOCAL else e for e in export_to if isinstance(e, str) and e}
    return frozenset({ALL}) if ALL in scopes else frozenset(scopes)


def describe_scopes(scopes: frozenset[str]) -> str:
    if ALL in scopes:
        return "all namespaces"
    if not scopes or scopes == {NONE}:
        return "no namespace"
    return "namespace" + ("s " if len(scopes) > 1 else " ") + ", ".join(sorted(scopes - {NONE}))


@dataclass(frozen=True)
class Host:
    """A host a Service or ServiceEntry declares, with where it is visible."""

    kind: str  # "Service" or "ServiceEntry"
    namespace: str
    name: str
    fqdn: str  # "*.example.com" for a wildcard entry
    ports: tuple[int, ...]
    scopes: frozenset[str]
    selector: dict | None  # the Service's selector, the ServiceEntry's workloadSelector labels

    @property
    def wildcard(self) -> bool:
        return self.fqdn.startswith("*")

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _ports(items, key: str) -> tuple[int, ...]:
    found = []
    for item in items or []:
        if isinstance(item, dict):
            try:
                found.append(int(item.get(key)))
            except (TypeError, ValueError):
                continue
    return tuple(found)


class HostRegistry:
    def __init__(self, snapshot, default_export_to: list[str]):
        self._by_scope: dict[tuple[str, str], Host] = {}
        self._wildcards: list[Host] = []
        self._declared: dict[str, list[Host]] = defaultdict(list)
        for entry in snapshot.of_kind("ServiceEntry"):
            spec = entry.get("spec") or {}
            ns = namespace_of(entry)
            scopes = scopes_of(spec.get("exportTo") or default_export_to, ns)
            selector = (spec.get("workloadSelector") or {}).get("labels")
            for host in spec.get("hosts") or []:
                if isinstance(host, str) and host:
                    self._add(Host("ServiceEntry", ns, name_of(entry), to_fqdn(host, ns),
                                   _ports(spec.get("ports"), "number"), scopes, selector))
        for service in snapshot.of_kind("Service"):
            ns = namespace_of(service)
            value = annotations_of(service).get(EXPORT_ANNOTATION)
            export_to = ([e.strip() for e in str(value).split(",")] if value not in (None, "")
                         else default_export_to)
            spec = service.get("spec") or {}
            self._add(Host("Service", ns, name_of(service), to_fqdn(name_of(service), ns),
                           _ports(spec.get("ports"), "port"), scopes_of(export_to, ns), spec.get("selector")))

    def _add(self, host: Host) -> None:
        # Services are filed after ServiceEntries and take their place, as in istioctl.
        for scope in host.scopes:
            self._by_scope[(scope, host.fqdn)] = host
        if host.wildcard:
            self._wildcards.append(host)
        self._declared[host.fqdn].append(host)

    def declared(self, fqdn: str) -> list[Host]:
        """Every Service or ServiceEntry declaring exactly this host, visible or not."""
        return self._declared.get(fqdn, [])

    def lookup(self, namespace: str, export_to, host: str) -> Host | None:
        """The Service or ServiceEntry that `host`, written in a config of `namespace`
        exported to `export_to` (its spec.exportTo, possibly empty), refers to."""
        fqdn = to_fqdn(host, namespace)
        found = self._by_scope.get((ALL, fqdn))
        if found:
            return found
        for scope in export_to or [LOCAL]:
            found = self._by_scope.get((namespace if scope == LOCAL else scope, fqdn))
            if found:
                return found
        bare = fqdn[1:] if fqdn.startswith("*") else fqdn
        for entry in self._wildcards:
            if (ALL in entry.scopes or namespace in entry.scopes) and bare.endswith(entry.fqdn[1:]):
                return entry
        return None

    def matching_elsewhere(self, fqdn: str) -> list[Host]:
        """What would match if visibility were ignored (for messages): the entries
        declaring the host, else wildcard entries covering it (not a bare "*", which
        covers every host and says nothing about this one)."""
        exact = self.declared(fqdn)
        if exact:
            return exact
        bare = fqdn[1:] if fqdn.startswith("*") else fqdn
        return [w for w in self._wildcards if w.fqdn != "*" and bare.endswith(w.fqdn[1:])]
