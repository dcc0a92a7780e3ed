"""What ``istioctl x describe`` prints: its line patterns, names and warnings.

Facts about the format (from istioctl's printing code, istioctl/pkg/describe):

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
"""

from __future__ import annotations

from kubectl_mesh.istioctl_parse._common import _lazy, _split_list

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

