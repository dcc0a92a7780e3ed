"""Parsers for istioctl's human-readable output. Pure functions, stdlib only.

* :func:`parse_describe` reads ``istioctl x describe pod`` and
  ``istioctl x describe service`` text.
* :func:`parse_routes` reads the ``istioctl proxy-config routes`` table (and
  the route table inside ``istioctl proxy-config all``).
* :func:`routes_from_config_dump` turns an Envoy config dump, or the
  RouteConfiguration list that ``proxy-config routes -o json`` prints, into
  the same rows istioctl would print.
* :func:`describe_warnings` lists the warnings of a parsed describe with the
  pod, service and Istio object each one concerns.

Every function takes whatever it is given: unknown or malformed input gives
empty structures, never an exception. Results are plain JSON-serialisable
dicts and lists with camelCase keys.

Facts about the formats (from istioctl's printing code, istioctl/pkg/describe
and istioctl/pkg/writer/envoy/configdump):

* describe prints names as ``NAME`` when the object is in the namespace
  describe ran in (``-n``), and ``NAME.NAMESPACE`` otherwise; so
  ``Pod: x`` often has no namespace (``pod.namespace`` is then None).
* ``Pod Ports`` omits ``/TCP`` (``9080 (app)``) and shows other protocols
  (``53/UDP (dns)``); a native-sidecar ``istio-proxy`` (an init container) is
  not listed at all.
* A service with several ports gets a ``PORT:`` line before each port's
  DestinationRule/VirtualService (older istioctl: ``PORT DestinationRule: ...``).
* ``Ingress Gateway NS/NAME be applyed all workloads`` is printed without a
  newline, so it runs into the next line; it is split off here.
* Each row of the routes table carries its RouteConfiguration's name; a
  blank NAME is an unnamed (static) RouteConfiguration, not a continuation.
  :func:`parse_routes` carries the name down by default all the same (the
  project's contract); pass ``carry_name=False`` to get what istioctl meant.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "WARNING_CODES",
    "describe_warnings",
    "parse_describe",
    "parse_routes",
    "routes_from_config_dump",
]

WARNING_CODES = (
    "not-in-mesh",
    "pod-matches-no-subset",
    "subset-without-destination-rule",
    "unknown-subset",
    "no-destination-matches",
    "proxy-not-ready",
    "other",
)

PROXY_CONTAINER = "istio-proxy"


class _lazy:
    """A regular expression compiled on first use, so that importing stays cheap."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled = None

    def __getattr__(self, name: str):
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return getattr(self._compiled, name)


def _text_lines(text) -> list[str]:
    """Lines of whatever was passed, with line ends and trailing blanks removed."""
    if text is None:
        return []
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return []
    return [line.rstrip() for line in text.splitlines()]


def _plain(value):
    """A JSON round trip: de-aliases shared dicts and proves serialisability."""
    return json.loads(json.dumps(value))


# ---------------------------------------------------------------------------
# istioctl x describe
# ---------------------------------------------------------------------------

_SEPARATOR = _lazy(r"^-{3,}$")
_POD = _lazy(r"^Pod: (\S+)$")
_POD_REVISION = _lazy(r"^Pod Revision:\s*(.*)$")
_POD_PORTS = _lazy(r"^Pod Ports:\s*(.*)$")
_POD_PORT_ITEM = _lazy(r"(\d+)(?:/([A-Za-z0-9_-]*))?\s*\(([^()]*)\)")
_POD_NO_PORTS = _lazy(r"^Pod does not expose ports$")
_POD_NOT_RUNNING = _lazy(r"^Pod is not Running \((.*)\)$")
_POD_MESSAGE = _lazy(r"^Pod (\S+): (.*)$")
_SERVICE = _lazy(r"^Service: (\S+)$")
_SERVICE_PORT = _lazy(r"^Port:\s+(?:(\S+)\s+)?(\d+)/(\S+) targets pod port (\d+)$")
_SERVICE_PORT_HEADER = _lazy(r"^(\d+):$")
_SERVICE_NO_PODS = _lazy(r'^Service "([^"]*)" has no pods\.?$')
_SERVICE_NO_ISTIO_PODS = _lazy(r'^Service "([^"]*)" has no Istio pods\.')
_DESTINATION_RULE = _lazy(r'^(?:(\d+) )?DestinationRule: (\S+) for "(.*)"$')
_MATCHING_SUBSETS = _lazy(r"^Matching subsets:\s*(.*)$")
_NON_MATCHING_SUBSETS = _lazy(r"^\(Non-matching subsets\s*(.*?)\)$")
_NO_TRAFFIC_POLICY = _lazy(r"^No Traffic Policy$")
_TRAFFIC_POLICY_TLS = _lazy(r"^Traffic Policy TLS Mode:\s*(\S*)$")
_POLICIES = _lazy(r"^Policies:\s*(.*)$")
_POLICY_NAMES = r"(?:load balancer|connection pool|outlier detection|port level settings)"
_OLD_POLICIES = _lazy(rf"^{_POLICY_NAMES}(?:/{_POLICY_NAMES})*$")
_PORT_LEVEL_SETTINGS = _lazy(r"^Port Level Settings:$")
_PORT_LEVEL_PORT = _lazy(r"^(\d+):$")
_PORT_LEVEL_TLS = _lazy(r"^TLS Mode:\s*(\S*)$")
_VIRTUAL_SERVICE = _lazy(r"^(?:(\d+) )?VirtualService: (\S+)$")
_ROUTE = _lazy(r'^Route to host "([^"]*)"(?: subset "([^"]*)")?(?: with weight (-?\d+)%)?$')
_OLD_WEIGHT = _lazy(r"^Weight (-?\d+)%$")
_ROUTE_INVALID = _lazy(r"^Route to (\S+) with invalid config$")
_ROUTE_NON_MATCHING = _lazy(r"^Route to non-matching subset (\S+) for \((.*)\)$")
_OLD_ROUTE_OTHER_HOST = _lazy(r"^Route to (\S+)$")
_FACT_SPLIT = _lazy(r",\s+(?=Match:|Fault injection)")
_ADDITIONAL = _lazy(r"^(\d+) additional destination\(s\) that will not reach this pod$")
_ROUTE_COUNT = _lazy(r"^(\d+) (HTTP|TCP) route\(s\)$")
_RBAC = _lazy(r"^(?:(\d+) )?RBAC policies:\s*(.*)$")
_EXPOSED = _lazy(r"^Exposed on Ingress Gateway (\S+)$")
_GATEWAY_ALL_WORKLOADS = _lazy(r"^Ingress Gateway (\S+) be applyed all workloads")
_SKIPPING_GATEWAY = _lazy(r"^Skipping Gateway information \((.*)\)$")
_EFFECTIVE_PA = _lazy(r"^Effective PeerAuthentication:$")
_WORKLOAD_MTLS = _lazy(r"^Workload mTLS mode:\s*(\S*)$")
_PORT_MTLS_HEADER = _lazy(r"^Port Level mTLS mode:$")
_PORT_MTLS = _lazy(r"^(\d+):\s*(\S+)$")
_APPLIED = _lazy(r"^Applied (\w+):$")
_SUGGESTION = _lazy(r"^(?:Suggestion:|Use `istioctl)")
_ERROR = _lazy(r"^Error:\s*(.*)$")

_WARNING = _lazy(r"^(?:WARNING|Warning)\b")
_W_NOT_IN_MESH = _lazy(r"^WARNING: (\S+) is not part of mesh; no Istio sidecar")
_W_POD_NO_SUBSET = _lazy(
    r"^WARNING POD DOES NOT MATCH ANY SUBSETS\.?(?:\s*\(Non matching subsets\s*(.*?)\))?"
)
_W_SUBSET_NO_DR = _lazy(r"^Warning: Route to subset (\S+) but NO DESTINATION RULE")
_W_UNKNOWN_SUBSET = _lazy(
    r"^Warning: Route to UNKNOWN subset (\S+?);? check DestinationRule (\S+)"
)
_W_NO_DESTINATIONS = _lazy(
    r"^WARNING: No destinations match pod subsets \(checked (\d+) (HTTP|TCP) routes?\)"
)
_W_NOT_READY = _lazy(r"^WARNING: Pod (\S+) (Init )?Container (\S+) NOT READY")
_W_STALE = _lazy(
    r"^WARNING: Proxy is stale; it references to non-existent "
    r"(destination rule|virtual service|gateway) (\S+)"
)
_W_NO_SERVICES = _lazy(r"^Warning: No Kubernetes Services select pod (\S+)")


def _split_list(value: str, sep: str = ",") -> list[str]:
    return [part.strip() for part in value.split(sep) if part.strip()]


def _split_pod_name(printed: str) -> tuple[str, str | None]:
    """istioctl prints pod-name[.namespace]; a pod name may itself hold dots."""
    name, dot, namespace = printed.rpartition(".")
    if not dot or not name or not namespace:
        return printed, None
    return name, namespace


def _split_service_name(printed: str) -> tuple[str, str | None]:
    """Service names are DNS labels (no dots), so the first dot starts the namespace."""
    name, dot, namespace = printed.partition(".")
    if not dot or not name or not namespace:
        return printed, None
    return name, namespace


def _qualified(obj: dict | None) -> str | None:
    if not obj or not obj.get("name"):
        return None
    if obj.get("namespace"):
        return f"{obj['name']}.{obj['namespace']}"
    return obj["name"]


def _classify_warning(text: str) -> dict:
    """A warning dict (code, message and what the line itself names) for one line."""
    warning: dict = {"code": "other", "message": text}
    m = _W_NOT_IN_MESH.match(text)
    if m:
        warning.update(code="not-in-mesh", subject=m.group(1))
        return warning
    m = _W_POD_NO_SUBSET.match(text)
    if m:
        warning.update(code="pod-matches-no-subset", subsets=_split_list(m.group(1) or ""))
        return warning
    m = _W_SUBSET_NO_DR.match(text)
    if m:
        warning.update(code="subset-without-destination-rule", subject=m.group(1))
        return warning
    m = _W_UNKNOWN_SUBSET.match(text)
    if m:
        warning.update(code="unknown-subset", subject=m.group(1), destinationRule=m.group(2))
        return warning
    m = _W_NO_DESTINATIONS.match(text)
    if m:
        warning.update(
            code="no-destination-matches", routesChecked=int(m.group(1)), routeType=m.group(2)
        )
        return warning
    m = _W_NOT_READY.match(text)
    if m:
        if m.group(3) == PROXY_CONTAINER:
            warning["code"] = "proxy-not-ready"
        warning.update(subject=m.group(1), container=m.group(3), initContainer=bool(m.group(2)))
        return warning
    m = _W_STALE.match(text)
    if m:
        warning.update(subject=m.group(2), kind=m.group(1))
        return warning
    m = _W_NO_SERVICES.match(text)
    if m:
        warning["subject"] = m.group(1)
    return warning


def _empty_describe() -> dict:
    return {
        "pod": None,
        "services": [],
        "ingress": [],
        "ingressSkipped": None,
        "effectivePeerAuthentication": None,
        "appliedPeerAuthentications": [],
        "appliedConfigs": {},
        "warnings": [],
        "suggestions": [],
        "errors": [],
        "notes": [],
        "unparsed": [],
    }


class _DescribeParser:
    """A line-by-line reader of describe output; content decides, indentation barely."""

    def __init__(self) -> None:
        self.result = _empty_describe()
        self.section: str | None = None  # pod, service, ingress, peerauth, applied
        self.service: dict | None = None
        self.service_port: int | None = None
        self.dr: dict | None = None
        self.vs: dict | None = None
        self.port_level: dict | None = None
        self.in_port_level = False
        self.ingress_group: list[dict] = []
        self.ingress_group_done = False
        self.applied_kind: str | None = None
        self.port_mtls = False

    # -- helpers ----------------------------------------------------------

    def close_objects(self) -> None:
        self.dr = None
        self.vs = None
        self.port_level = None
        self.in_port_level = False

    def ensure_pod(self) -> dict:
        if self.result["pod"] is None:
            self.result["pod"] = {
                "name": None,
                "namespace": None,
                "revision": None,
                "ports": [],
                "phase": None,
            }
        return self.result["pod"]

    def new_service(self, printed: str | None) -> dict:
        name, namespace = _split_service_name(printed) if printed else (None, None)
        service = {
            "name": name,
            "namespace": namespace,
            "ports": [],
            "destinationRule": None,
            "destinationRules": [],
            "virtualServices": [],
            "rbacPolicies": [],
        }
        self.result["services"].append(service)
        self.service = service
        self.service_port = None
        self.section = "service"
        return service

    def ensure_service(self) -> dict:
        return self.service if self.service is not None else self.new_service(None)

    def context(self) -> dict:
        return {
            "section": self.section,
            "service": _qualified(self.service),
            "servicePort": self.service_port,
            "destinationRule": self.dr["name"] if self.dr else None,
            "virtualService": self.vs["name"] if self.vs else None,
        }

    def unparsed(self, text: str) -> None:
        self.result["unparsed"].append(text)

    # -- one line ---------------------------------------------------------

    def feed(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        indent = len(line) - len(line.lstrip())

        m = _GATEWAY_ALL_WORKLOADS.match(text)
        while m:
            # Printed without a newline: whatever follows belongs to the next line.
            self.result["notes"].append(m.group(0))
            text = text[m.end():].strip()
            if not text:
                return
            indent = 0
            m = _GATEWAY_ALL_WORKLOADS.match(text)

        if _SEPARATOR.match(text):
            self.close_objects()
            self.section = None
            self.service = None
            self.service_port = None
            self.ingress_group = []
            self.ingress_group_done = False
            return

        if _WARNING.match(text):
            self.warning(text)
            return

        for handler in (self.pod_line, self.service_line, self.destination_rule_line,
                        self.virtual_service_line, self.ingress_line, self.peer_auth_line,
                        self.misc_line):
            if handler(text, indent):
                return
        self.unparsed(text)

    def warning(self, text: str) -> None:
        warning = _classify_warning(text)
        if warning["code"] == "pod-matches-no-subset" and self.dr:
            warning["subject"] = self.dr["name"]
        elif warning["code"] == "no-destination-matches" and self.vs:
            warning["subject"] = self.vs["name"]
        warning["context"] = self.context()
        self.result["warnings"].append(warning)

    def pod_line(self, text: str, indent: int) -> bool:
        m = _POD.match(text)
        if m:
            self.close_objects()
            self.result["pod"] = None
            pod = self.ensure_pod()
            pod["name"], pod["namespace"] = _split_pod_name(m.group(1))
            self.section = "pod"
            return True
        m = _POD_REVISION.match(text)
        if m:
            self.ensure_pod()["revision"] = m.group(1).strip() or None
            return True
        m = _POD_PORTS.match(text)
        if m:
            pod = self.ensure_pod()
            for port, protocol, container in _POD_PORT_ITEM.findall(m.group(1)):
                pod["ports"].append(
                    {"port": int(port), "protocol": protocol or "TCP", "container": container}
                )
            return True
        if _POD_NO_PORTS.match(text):
            self.ensure_pod()
            return True
        m = _POD_NOT_RUNNING.match(text)
        if m:
            if self.section == "pod" and self.result["pod"] is not None:
                self.result["pod"]["phase"] = m.group(1)
            self.result["notes"].append(text)
            return True
        return False

    def service_line(self, text: str, indent: int) -> bool:
        m = _SERVICE.match(text)
        if m:
            self.close_objects()
            self.new_service(m.group(1))
            return True
        m = _SERVICE_PORT.match(text)
        if m and self.section == "service" and self.service is not None:
            name, port, protocol, target = m.groups()
            self.service["ports"].append(
                {"name": name or "", "port": int(port), "protocol": protocol,
                 "targetPort": int(target)}
            )
            return True
        m = _SERVICE_PORT_HEADER.match(text)
        if m and indent == 0 and self.section == "service":
            self.close_objects()
            self.service_port = int(m.group(1))
            return True
        m = _RBAC.match(text)
        if m:
            service = self.ensure_service()
            for policy in _split_list(m.group(2)):
                if policy not in service["rbacPolicies"]:
                    service["rbacPolicies"].append(policy)
            return True
        return False

    def destination_rule_line(self, text: str, indent: int) -> bool:
        m = _DESTINATION_RULE.match(text)
        if m:
            self.close_objects()
            service = self.ensure_service()
            port = int(m.group(1)) if m.group(1) else self.service_port
            self.dr = {
                "name": m.group(2),
                "host": m.group(3),
                "servicePort": port,
                "matchingSubsets": [],
                "nonMatchingSubsets": [],
                # A DestinationRule without "No Traffic Policy" has one, even if
                # istioctl printed nothing about it (it ignores most fields).
                "trafficPolicy": {"tlsMode": None, "policies": []},
                "portLevelSettings": [],
            }
            service["destinationRules"].append(self.dr)
            if service["destinationRule"] is None:
                service["destinationRule"] = self.dr
            return True
        dr = self.dr
        if dr is None:
            return False
        m = _MATCHING_SUBSETS.match(text)
        if m:
            dr["matchingSubsets"] = _split_list(m.group(1))
            return True
        m = _NON_MATCHING_SUBSETS.match(text)
        if m:
            dr["nonMatchingSubsets"] = _split_list(m.group(1))
            return True
        if _NO_TRAFFIC_POLICY.match(text):
            dr["trafficPolicy"] = None
            return True
        m = _TRAFFIC_POLICY_TLS.match(text)
        if m:
            self.traffic_policy(dr)["tlsMode"] = m.group(1) or None
            return True
        if _PORT_LEVEL_SETTINGS.match(text):
            self.traffic_policy(dr)
            self.in_port_level = True
            return True
        m = _PORT_LEVEL_PORT.match(text)
        if m and self.in_port_level:
            self.port_level = {"port": int(m.group(1)), "tlsMode": None, "policies": []}
            dr["portLevelSettings"].append(self.port_level)
            return True
        m = _PORT_LEVEL_TLS.match(text)
        if m and self.port_level is not None:
            self.port_level["tlsMode"] = m.group(1) or None
            return True
        m = _POLICIES.match(text)
        if m or _OLD_POLICIES.match(text):
            policies = _split_list(m.group(1) if m else text, "/")
            target = self.port_level if self.port_level is not None else self.traffic_policy(dr)
            target["policies"] = policies
            return True
        return False

    @staticmethod
    def match_facts(text: str, matches: list, others: list) -> None:
        """Split "Fault injection ..., Match: /a*, Match: /b when headers are k=v"."""
        for part in _FACT_SPLIT.split(text):
            if part.startswith("Match:"):
                matches.append(part[len("Match:"):].strip())
            elif part.strip():
                others.append(part.strip())

    @staticmethod
    def traffic_policy(dr: dict) -> dict:
        if dr["trafficPolicy"] is None:
            dr["trafficPolicy"] = {"tlsMode": None, "policies": []}
        return dr["trafficPolicy"]

    def virtual_service_line(self, text: str, indent: int) -> bool:
        m = _VIRTUAL_SERVICE.match(text)
        if m:
            self.close_objects()
            port = int(m.group(1)) if m.group(1) else self.service_port
            vs = {
                "name": m.group(2),
                "servicePort": port,
                "routes": [],
                "matches": [],
                "nonMatchingRoutes": [],
                "additionalDestinations": None,
                "otherFacts": [],
            }
            if self.section == "ingress":
                if not self.ingress_group:
                    entry = {"url": None, "virtualServices": []}
                    self.result["ingress"].append(entry)
                    self.ingress_group.append(entry)
                for entry in self.ingress_group:
                    entry["virtualServices"].append(vs)
                self.ingress_group_done = True
            else:
                self.ensure_service()["virtualServices"].append(vs)
            self.vs = vs
            return True
        vs = self.vs
        if vs is None:
            return False
        m = _ROUTE.match(text)
        if m:
            host, subset, weight = m.groups()
            route: dict = {"host": host}
            if subset is not None:
                route["subset"] = subset
            route["weight"] = int(weight) if weight is not None else None
            vs["routes"].append(route)
            return True
        m = _OLD_WEIGHT.match(text)
        if m:
            vs["routes"].append({"host": None, "weight": int(m.group(1))})
            return True
        m = _ROUTE_INVALID.match(text)
        if m:
            vs["routes"].append({"host": m.group(1), "weight": None, "invalidConfig": True})
            return True
        m = _ROUTE_NON_MATCHING.match(text)
        if m:
            matches: list[str] = []
            if m.group(2) != "everything":  # istioctl's word for "no match conditions"
                self.match_facts(m.group(2), matches, [])
            vs["nonMatchingRoutes"].append({"subset": m.group(1), "matches": matches})
            return True
        if text.startswith(("Match:", "Fault injection")):
            self.match_facts(text, vs["matches"], vs["otherFacts"])
            return True
        m = _ADDITIONAL.match(text)
        if m:
            vs["additionalDestinations"] = int(m.group(1))
            return True
        m = _OLD_ROUTE_OTHER_HOST.match(text)
        if m:
            vs["routes"].append({"host": m.group(1), "weight": None})
            return True
        if _ROUTE_COUNT.match(text) or indent > 0:
            # TCP match conditions, route counts, old-style bare matches.
            vs["otherFacts"].append(text)
            return True
        return False

    def ingress_line(self, text: str, indent: int) -> bool:
        m = _EXPOSED.match(text)
        if m:
            self.close_objects()
            if self.section != "ingress" or self.ingress_group_done:
                self.ingress_group = []
                self.ingress_group_done = False
            self.section = "ingress"
            self.service = None
            entry = {"url": m.group(1), "virtualServices": []}
            self.result["ingress"].append(entry)
            self.ingress_group.append(entry)
            return True
        m = _SKIPPING_GATEWAY.match(text)
        if m:
            self.result["ingressSkipped"] = m.group(1)
            return True
        return False

    def peer_auth_line(self, text: str, indent: int) -> bool:
        if _EFFECTIVE_PA.match(text):
            self.close_objects()
            self.section = "peerauth"
            self.service = None
            self.port_mtls = False
            self.result["effectivePeerAuthentication"] = {
                "workloadMtlsMode": None,
                "portLevelMtlsModes": [],
            }
            return True
        m = _APPLIED.match(text)
        if m:
            self.close_objects()
            self.section = "applied"
            self.service = None
            self.applied_kind = m.group(1)
            self.result["appliedConfigs"].setdefault(self.applied_kind, [])
            return True
        if self.section == "peerauth":
            effective = self.result["effectivePeerAuthentication"]
            m = _WORKLOAD_MTLS.match(text)
            if m:
                effective["workloadMtlsMode"] = m.group(1) or None
                return True
            if _PORT_MTLS_HEADER.match(text):
                self.port_mtls = True
                return True
            m = _PORT_MTLS.match(text)
            if m and self.port_mtls:
                effective["portLevelMtlsModes"].append({"port": int(m.group(1)), "mode": m.group(2)})
                return True
        if self.section == "applied" and indent > 0 and self.applied_kind:
            names = _split_list(text)
            self.result["appliedConfigs"][self.applied_kind].extend(names)
            if self.applied_kind == "PeerAuthentication":
                self.result["appliedPeerAuthentications"].extend(names)
            return True
        return False

    def misc_line(self, text: str, indent: int) -> bool:
        if _SUGGESTION.match(text):
            self.result["suggestions"].append(text)
            return True
        m = _ERROR.match(text)
        if m:
            self.result["errors"].append(m.group(1))
            return True
        if (_SERVICE_NO_PODS.match(text) or _SERVICE_NO_ISTIO_PODS.match(text)
                or _POD_MESSAGE.match(text)):
            self.result["notes"].append(text)
            return True
        return False


def parse_describe(text: str) -> dict:
    """Parse ``istioctl x describe pod|service`` output.

    Returns::

        {"pod": {"name", "namespace", "revision", "ports": [{"port", "protocol", "container"}],
                 "phase"} | None,
         "services": [{"name", "namespace", "ports": [{"name", "port", "protocol", "targetPort"}],
                       "destinationRule": DR | None, "destinationRules": [DR, ...],
                       "virtualServices": [VS, ...], "rbacPolicies": [str]}],
         "ingress": [{"url", "virtualServices": [VS, ...]}],
         "ingressSkipped": reason | None,
         "effectivePeerAuthentication": {"workloadMtlsMode",
                                         "portLevelMtlsModes": [{"port", "mode"}]} | None,
         "appliedPeerAuthentications": ["name.namespace", ...],
         "appliedConfigs": {kind: ["name.namespace", ...]},
         "warnings": [{"code", "message", "subject"?, ..., "context": {...}}],
         "suggestions": [str], "errors": [str], "notes": [str], "unparsed": [str]}

    DR = {"name", "host", "servicePort", "matchingSubsets", "nonMatchingSubsets",
    "trafficPolicy": {"tlsMode", "policies"} | None,
    "portLevelSettings": [{"port", "tlsMode", "policies"}]};
    VS = {"name", "servicePort", "routes": [{"host", "subset"?, "weight"}], "matches",
    "nonMatchingRoutes": [{"subset", "matches"}], "additionalDestinations", "otherFacts"}.
    ``matches`` are istioctl's renderings without the "Match: " prefix
    (``/p*`` a prefix, ``/p`` exact, ``/p uncased``, ``when headers are k=v``);
    an empty list means the route matches everything.
    ``pod.phase`` is set only when istioctl says the pod is not Running.
    A warning's ``context`` says where it was printed (section, service,
    servicePort, destinationRule, virtualService).
    """
    parser = _DescribeParser()
    for line in _text_lines(text):
        try:
            parser.feed(line)
        except Exception:  # noqa: BLE001 - the contract is: never raise on odd text
            parser.unparsed(line.strip())
    return _plain(parser.result)


def describe_warnings(parsed: dict) -> list[dict]:
    """The warnings of a :func:`parse_describe` result, each with what it concerns.

    Each item is the warning (code, message, subject and details) plus
    ``pod`` (the pod as printed, NAME[.NAMESPACE], or None), ``service``,
    ``destinationRule`` and ``virtualService`` (where it was printed, or None).
    A warning printed outside any service section (an ingress section of a
    ``describe service``) is given the service when only one was described.
    """
    if not isinstance(parsed, dict):
        return []
    pod = parsed.get("pod") if isinstance(parsed.get("pod"), dict) else None
    pod_name = _qualified(pod)
    services = [s for s in parsed.get("services") or [] if isinstance(s, dict)]
    only_service = _qualified(services[0]) if len(services) == 1 else None
    items = []
    for warning in parsed.get("warnings") or []:
        if not isinstance(warning, dict):
            continue
        context = warning.get("context") if isinstance(warning.get("context"), dict) else {}
        item = {key: value for key, value in warning.items() if key != "context"}
        about_a_pod = warning.get("code") in ("not-in-mesh", "proxy-not-ready") or (
            "container" in warning
        )
        item["pod"] = (warning.get("subject") if about_a_pod else None) or pod_name
        item["service"] = context.get("service") or only_service
        item["destinationRule"] = warning.get("destinationRule") or context.get("destinationRule")
        item["virtualService"] = context.get("virtualService")
        items.append(item)
    return items


# ---------------------------------------------------------------------------
# istioctl proxy-config routes
# ---------------------------------------------------------------------------

_ROUTE_COLUMNS = (
    ("NAME", "name"),
    ("VHOST NAME", "vhostName"),
    ("DOMAINS", "domains"),
    ("MATCH", "match"),
    ("VIRTUAL SERVICE", "virtualService"),
)
_ROUTES_HEADER = _lazy(
    r"^\s*NAME(\s+|\t)(?:VHOST NAME(?:\s+|\t))?DOMAINS(?:\s+|\t)MATCH(?:\s+|\t)VIRTUAL SERVICE\s*$"
)
_TYPE_PREFIX = "route/"  # `istioctl proxy-config all` prefixes each name with its type


def _column_starts(header: str) -> list[tuple[int, str]]:
    """(start, key) of each column present in the header, left to right."""
    starts = []
    position = 0
    for label, key in _ROUTE_COLUMNS:
        at = header.find(label, position)
        if at < 0:
            continue
        starts.append((at, key))
        position = at + len(label)
    return starts


def _cut_row(line: str, starts: list[tuple[int, str]]) -> dict:
    """Cells of a tabwriter row by the header's column positions.

    tabwriter pads every cell to its column width plus five spaces, so a
    column boundary falls after a space. If a row is misaligned (a cell runs
    over the boundary), the boundary moves past the end of that word.
    """
    bounds = []
    previous = 0
    for start, _key in starts:
        at = max(start, previous)
        if 0 < at < len(line) and line[at - 1] != " " and line[at] != " ":
            while at < len(line) and line[at] != " ":
                at += 1
            while at < len(line) and line[at] == " ":
                at += 1
        bounds.append(at)
        previous = at
    row = {key: "" for _label, key in _ROUTE_COLUMNS}
    for index, (_start, key) in enumerate(starts):
        end = bounds[index + 1] if index + 1 < len(bounds) else len(line)
        row[key] = line[bounds[index]:end].strip()
    return row


def parse_routes(text: str, *, carry_name: bool = True) -> list[dict]:
    """Parse the ``istioctl proxy-config routes`` table into rows.

    Each row is ``{"name", "vhostName", "domains", "match", "virtualService"}``
    with blank cells as "". Columns are cut at the header's column positions,
    so cells holding spaces (``a.svc, b.svc + 2 more...``) stay whole. Every
    route table in the text is read (``proxy-config all`` too, whose
    ``route/`` name prefix is dropped); other tables are ignored. An older
    header without VHOST NAME gives vhostName "".

    With ``carry_name`` (the default) a blank NAME takes the name of the row
    above. istioctl itself prints each row's RouteConfiguration name, so a
    blank NAME really is an unnamed (static) RouteConfiguration; pass
    ``carry_name=False`` to keep it blank.
    """
    lines = _text_lines(text)
    rows: list[dict] = []
    index = 0
    while index < len(lines):
        header = lines[index]
        index += 1
        if not _ROUTES_HEADER.match(header):
            continue
        tabbed = "\t" in header
        starts = _column_starts(header)
        if not starts or starts[0][1] != "name":
            continue
        keys = [key for _start, key in starts]
        previous_name = ""
        while index < len(lines) and lines[index].strip() and not _ROUTES_HEADER.match(lines[index]):
            line = lines[index]
            index += 1
            if tabbed:
                cells = [cell.strip() for cell in line.split("\t")]
                row = {key: "" for _label, key in _ROUTE_COLUMNS}
                row.update({key: cell for key, cell in zip(keys, cells, strict=False)})
            else:
                row = _cut_row(line, starts)
            name = row["name"]
            if name.startswith(_TYPE_PREFIX):
                name = name[len(_TYPE_PREFIX):]
            elif not name and carry_name:
                name = previous_name
            row["name"] = name
            previous_name = name
            rows.append(row)
    return rows


def _field(obj, *names, default=None):
    """A field of a proto-JSON dict by its snake_case or camelCase name."""
    if not isinstance(obj, dict):
        return default
    for name in names:
        if name in obj and obj[name] is not None:
            return obj[name]
    return default


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _is_route_configuration(obj: dict) -> bool:
    type_url = str(obj.get("@type", ""))
    if type_url.endswith("RouteConfiguration"):
        return True
    return "virtual_hosts" in obj or "virtualHosts" in obj


def _route_configurations(doc) -> list[dict]:
    """RouteConfigurations in a config dump, in the order istioctl prints them."""
    if isinstance(doc, list):
        found = []
        for item in doc:
            found.extend(_route_configurations(item))
        return found
    if not isinstance(doc, dict):
        return []
    configs = doc.get("configs")
    if isinstance(configs, dict):
        configs = list(configs.values())
    if isinstance(configs, list):
        found = []
        for config in configs:
            if isinstance(config, dict) and (
                str(config.get("@type", "")).endswith("RoutesConfigDump")
                or _has_route_dump_keys(config)
            ):
                found.extend(_route_configurations(config))
        return found
    if _has_route_dump_keys(doc):
        # istioctl lists the dynamic RouteConfigurations first, then the static ones.
        found = []
        for key in (("dynamic_route_configs", "dynamicRouteConfigs"),
                    ("static_route_configs", "staticRouteConfigs")):
            for entry in _list(_field(doc, *key)):
                route_config = _field(entry, "route_config", "routeConfig")
                if isinstance(route_config, dict):
                    found.append(route_config)
        return found
    wrapped = _field(doc, "route_config", "routeConfig")
    if isinstance(wrapped, dict):
        return [wrapped]
    if _is_route_configuration(doc):
        return [doc]
    return []


def _has_route_dump_keys(obj: dict) -> bool:
    return any(key in obj for key in ("dynamic_route_configs", "dynamicRouteConfigs",
                                      "static_route_configs", "staticRouteConfigs"))


_INTEGER = _lazy(r"^[+-]?\d+$")


def _istioctl_order(route_configs: list[dict]) -> list[dict]:
    """istioctl sorts with "both names numeric and i < j"; any other pair is "not less".

    Go's sort (insertion sort below 13 elements) then never moves a config
    past a non-numeric name: each run of numeric names is sorted, the rest
    stay put. That is exact for small dumps and close for large ones.
    """
    ordered: list[dict] = []
    run: list[tuple[int, int, dict]] = []
    for position, config in enumerate(route_configs):
        name = str(_field(config, "name", default="") or "")
        if _INTEGER.match(name):
            run.append((int(name), position, config))
            continue
        ordered.extend(item for _n, _p, item in sorted(run, key=lambda t: (t[0], t[1])))
        run = []
        ordered.append(config)
    ordered.extend(item for _n, _p, item in sorted(run, key=lambda t: (t[0], t[1])))
    return ordered


def _describe_domains(domains) -> str:
    """istioctl's DOMAINS cell: the port-less domains, shortened, at most two shown."""
    if not isinstance(domains, list):
        return ""
    domains = [str(d) for d in domains]
    if not domains:
        return ""
    if len(domains) == 1:
        return domains[0]
    without_port = []
    for domain in domains:
        if ":" not in domain:
            without_port.append(domain)
        elif domain.count(":") > 2 and domain.endswith("]"):
            without_port.append(domain)  # a bare IPv6 address such as [fd00::1]
    unique = set(without_port)
    redundant = set()
    for domain in without_port:
        for suffix in (".svc.cluster.local", ".svc"):
            if domain.endswith(suffix) and domain[: -len(suffix)] in unique:
                redundant.add(domain)
    shown = [d for d in without_port if d not in redundant]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _describe_match(match) -> str:
    if not isinstance(match, dict):
        return ""
    conditions = []
    prefix = _field(match, "prefix")
    if prefix:
        conditions.append(f"{prefix}*")
    separated = _field(match, "path_separated_prefix", "pathSeparatedPrefix")
    if separated:
        conditions.append(f"PathPrefix:{separated}")
    path = _field(match, "path")
    if path:
        conditions.append(str(path))
    regex = _field(match, "safe_regex", "safeRegex")
    if regex:
        pattern = _field(regex, "regex") if isinstance(regex, dict) else regex
        conditions.append(f"regex {pattern}")
    return " ".join(str(c) for c in conditions)


_VS_CONFIG = _lazy(
    r"^/apis/networking(?:\.istio\.io)?/v1(?:alpha3|beta1)?/namespaces/([^/]+)/virtual-service/([^/]+)$"
)


def _describe_management(metadata) -> str:
    filter_metadata = _field(metadata, "filter_metadata", "filterMetadata")
    istio = _field(filter_metadata, "istio")
    config = _field(istio, "config")
    if config is None:
        return ""
    m = _VS_CONFIG.match(str(config))
    if m:
        return f"{m.group(2)}.{m.group(1)}"
    return "<unknown>"


def _is_passthrough(route: dict) -> bool:
    action = _field(route, "route")
    return isinstance(action, dict) and action.get("cluster") == "PassthroughCluster"


def routes_from_config_dump(doc) -> list[dict]:
    """The rows ``istioctl proxy-config routes`` would print for a config dump.

    ``doc`` is an Envoy ``/config_dump`` document (``{"configs": [...]}``),
    one RoutesConfigDump, the RouteConfiguration list ``proxy-config routes
    -o json`` prints, or one RouteConfiguration (a JSON string of any of
    these is accepted too). Rows are ``{"name", "vhostName", "domains",
    "match", "virtualService"}``, with istioctl's rendering: ``/p*`` for a
    prefix, ``PathPrefix:/p`` for a path-separated prefix, ``regex R``;
    ``name.namespace`` of the VirtualService; a virtual host without routes
    gives one row ``/*`` / ``404``; routes to PassthroughCluster are left out.
    """
    if isinstance(doc, (str, bytes, bytearray)):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    try:
        route_configs = _route_configurations(doc)
    except RecursionError:  # absurdly nested lists
        return []
    rows = []
    for config in _istioctl_order(route_configs):
        name = str(_field(config, "name", default="") or "")
        for vhost in _list(_field(config, "virtual_hosts", "virtualHosts")):
            if not isinstance(vhost, dict):
                continue
            vhost_name = str(_field(vhost, "name", default="") or "")
            domains = _describe_domains(_field(vhost, "domains", default=[]))
            routes = _list(_field(vhost, "routes"))
            for route in routes:
                if not isinstance(route, dict) or _is_passthrough(route):
                    continue
                rows.append({
                    "name": name,
                    "vhostName": vhost_name,
                    "domains": domains,
                    "match": _describe_match(_field(route, "match")),
                    "virtualService": _describe_management(_field(route, "metadata")),
                })
            if not routes:
                rows.append({"name": name, "vhostName": vhost_name, "domains": domains,
                             "match": "/*", "virtualService": "404"})
    return rows
