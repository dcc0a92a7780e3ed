"""Istio's annotations: which resources each belongs on, which are deprecated, and
the format of their values.

The table is istio/api's annotation definitions (annotation/annotations.yaml, as
generated into annotations.gen.go): name -> the kinds it applies to ("Any" for
all) and whether it is deprecated. The formats are those Istio's injector
validates (pkg/kube/inject/validate.go: interception mode, ports, CIDRs,
readiness integers, merge-metrics, proxy.istio.io/config), and, going
further, those of the other sidecar.istio.io/* annotations whose values have a
known format (booleans, log levels, JSON volumes, image types).
"""

from __future__ import annotations

import ipaddress
import json
import re

ANY = "Any"
POD, SERVICE, NAMESPACE, GATEWAY = "Pod", "Service", "Namespace", "Gateway"

# name -> (resource kinds, deprecated)
ANNOTATIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    "alpha.istio.io/canonical-serviceaccounts": ((SERVICE,), True),
    "alpha.istio.io/kubernetes-serviceaccounts": ((SERVICE,), True),
    "ambient.istio.io/bypass-inbound-capture": ((POD,), False),
    "ambient.istio.io/redirection": ((POD,), False),
    "ambient.istio.io/waypoint-inbound-binding": (("GatewayClass", GATEWAY), False),
    "galley.istio.io/analyze-suppress": ((ANY,), False),
    "gateway.istio.io/controller-version": ((ANY,), False),
    "gateway.istio.io/name-override": ((GATEWAY,), False),
    "gateway.istio.io/service-account": ((GATEWAY,), False),
    "inject.istio.io/templates": ((POD,), False),
    "install.operator.istio.io/chart-owner": ((ANY,), False),
    "install.operator.istio.io/owner-generation": ((ANY,), False),
    "install.operator.istio.io/version": ((ANY,), False),
    "istio.io/autoRegistrationGroup": (("WorkloadEntry",), False),
    "istio.io/connectedAt": (("WorkloadEntry",), False),
    "istio.io/disconnectedAt": (("WorkloadEntry",), False),
    "istio.io/dry-run": (("AuthorizationPolicy",), False),
    "istio.io/rev": ((POD,), False),
    "istio.io/workloadController": (("WorkloadEntry",), False),
    "kubernetes.io/ingress.class": (("Ingress",), False),
    "networking.istio.io/exportTo": ((SERVICE,), False),
    "networking.istio.io/service-type": ((GATEWAY,), False),
    "networking.istio.io/traffic-distribution": ((SERVICE, "ServiceEntry"), False),
    "prometheus.istio.io/merge-metrics": ((POD,), False),
    "proxy.istio.io/config": ((POD,), False),
    "proxy.istio.io/overrides": ((POD,), False),
    "readiness.status.sidecar.istio.io/applicationPorts": ((POD,), False),
    "readiness.status.sidecar.istio.io/failureThreshold": ((POD,), False),
    "readiness.status.sidecar.istio.io/initialDelaySeconds": ((POD,), False),
    "readiness.status.sidecar.istio.io/periodSeconds": ((POD,), False),
    "sidecar.istio.io/agentLogLevel": ((POD,), False),
    "sidecar.istio.io/bootstrapOverride": ((POD,), False),
    "sidecar.istio.io/componentLogLevel": ((POD,), False),
    "sidecar.istio.io/discoveryAddress": ((POD,), True),
    "sidecar.istio.io/enableCoreDump": ((POD,), False),
    "sidecar.istio.io/extraStatTags": ((POD,), True),
    "sidecar.istio.io/inject": ((POD,), True),  # in favour of the sidecar.istio.io/inject label
    "sidecar.istio.io/interceptionMode": ((POD,), False),
    "sidecar.istio.io/logLevel": ((POD,), False),
    "sidecar.istio.io/nativeSidecar": ((POD,), False),
    "sidecar.istio.io/proxyCPU": ((POD,), False),
    "sidecar.istio.io/proxyCPULimit": ((POD,), False),
    "sidecar.istio.io/proxyImage": ((POD,), False),
    "sidecar.istio.io/proxyImageType": ((POD,), False),
    "sidecar.istio.io/proxyMemory": ((POD,), False),
    "sidecar.istio.io/proxyMemoryLimit": ((POD,), False),
    "sidecar.istio.io/rewriteAppHTTPProbers": ((POD,), False),
    "sidecar.istio.io/statsHistogramBuckets": ((POD,), False),
    "sidecar.istio.io/statsInclusionPrefixes": ((POD,), True),
    "sidecar.istio.io/statsInclusionRegexps": ((POD,), True),
    "sidecar.istio.io/statsInclusionSuffixes": ((POD,), True),
    "sidecar.istio.io/status": ((POD,), False),
    "sidecar.istio.io/userVolume": ((POD,), False),
    "sidecar.istio.io/userVolumeMount": ((POD,), False),
    "status.sidecar.istio.io/port": ((POD,), False),
    "topology.istio.io/controlPlaneClusters": ((NAMESPACE,), False),
    "traffic.istio.io/nodeSelector": ((SERVICE,), False),
    "traffic.sidecar.istio.io/excludeInboundPorts": ((POD,), False),
    "traffic.sidecar.istio.io/excludeInterfaces": ((POD,), False),
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": ((POD,), False),
    "traffic.sidecar.istio.io/excludeOutboundPorts": ((POD,), False),
    "traffic.sidecar.istio.io/includeInboundPorts": ((POD,), False),
    "traffic.sidecar.istio.io/includeOutboundIPRanges": ((POD,), False),
    "traffic.sidecar.istio.io/includeOutboundPorts": ((POD,), False),
    "traffic.sidecar.istio.io/kubevirtInterfaces": ((POD,), False),
    # Later than the definitions above; known, so that they are never called unknown.
    "istio.io/reroute-virtual-interfaces": ((POD,), False),
}
DEPRECATION_NOTE = {"sidecar.istio.io/inject": ' in favor of the "sidecar.istio.io/inject" label'}
# MESH-RES-002 checks these (an error: the injector cannot render the pod).
RESOURCE_ANNOTATIONS = frozenset({"sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyCPULimit",
                                  "sidecar.istio.io/proxyMemory", "sidecar.istio.io/proxyMemoryLimit"})


def is_istio_annotation(name: str) -> bool:
    """istioctl's test: kubernetes.io/ingress.class (which Istio documents), or a
    prefix (before the first /) that ends in istio.io."""
    return name == "kubernetes.io/ingress.class" or name.split("/", 1)[0].endswith("istio.io")


# -- value formats: each returns the problem, or None --------------------------------------
def _uint(value: str, bits: int) -> int | None:
    if not re.fullmatch(r"[0-9]+", value):
        return None
    number = int(value)
    return number if number < 2**bits else None


def port(value: str) -> str | None:
    return None if _uint(value.strip(), 16) is not None else f"{value!r} is not a port (0-65535)"


def ports(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    bad = [p for p in text.split(",") if _uint(p.strip(), 16) is None]
    return f"not a comma-separated list of ports: {', '.join(repr(b) for b in bad)}" if bad else None


def ports_or_star(value: str) -> str | None:
    return None if value == "*" else ports(value)


def cidrs(value: str) -> str | None:
    if not value:
        return None
    bad = []
    for item in value.split(","):
        try:
            ipaddress.ip_network(item, strict=False)
            if "/" not in item:
                raise ValueError
        except ValueError:
            bad.append(item)
    return f"not a comma-separated list of CIDRs (e.g. 10.0.0.0/8): {', '.join(repr(b) for b in bad)}" if bad else None


def cidrs_or_star(value: str) -> str | None:
    return None if value == "*" else cidrs(value)


def uint32(value: str) -> str | None:
    return None if _uint(value, 32) is not None else f"{value!r} is not a non-negative integer"


_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


def boolean(value: str) -> str | None:
    return None if value in _BOOLS else f"{value!r} is not a boolean (true or false)"


def one_of(*choices: str):
    def check(value: str) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"
    return check


ENVOY_LEVELS = ("trace", "debug", "info", "warning", "warn", "error", "critical", "off")
AGENT_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal", "none")


def scoped_levels(levels: tuple[str, ...], *, bare: bool):
    """"scope:level,scope:level" (and, with bare, a single "level")."""
    def check(value: str) -> str | None:
        items = [i.strip() for i in value.split(",")] if value.strip() else []
        bad = []
        for item in items:
            scope, _, level = item.rpartition(":")
            if (not scope and not bare) or level not in levels or (scope == "" and ":" in item):
                bad.append(item)
        if not items or bad:
            form = "LEVEL or SCOPE:LEVEL,..." if bare else "COMPONENT:LEVEL,..."
            return f"{', '.join(repr(b) for b in bad) or repr(value)}: expected {form} with levels {', '.join(levels)}"
        return None
    return check


def json_value(kinds: tuple[type, ...], what: str):
    def check(value: str) -> str | None:
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            return f"not valid JSON ({exc.msg})"
        return None if isinstance(parsed, kinds) else f"JSON {what} expected"
    return check


def histogram_buckets(value: str) -> str | None:
    problem = json_value((dict,), "object")(value)
    if problem:
        return problem
    for prefix, buckets in json.loads(value).items():
        if not isinstance(buckets, list) or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                                    for b in buckets):
            return f"buckets of {prefix!r} must be a list of numbers"
    return None


def host_port(value: str) -> str | None:
    host, sep, number = value.rpartition(":")
    if not sep or not host or _uint(number, 16) in (None, 0):
        return f"{value!r} is not HOST:PORT"
    return None


_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
_PROXY_CONFIG_CHECKS = {
    "concurrency": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0
    else "concurrency must be a non-negative integer",
    "holdApplicationUntilProxyStarts": lambda v: None if isinstance(v, bool) else
    "holdApplicationUntilProxyStarts must be true or false",
    "interceptionMode": lambda v: None if v in ("REDIRECT", "TPROXY", "NONE") else
    "interceptionMode must be REDIRECT, TPROXY or NONE",
    "statusPort": lambda v: None if isinstance(v, int) and 0 < v < 65536 else "statusPort must be a port",
    "proxyAdminPort": lambda v: None if isinstance(v, int) and 0 < v < 65536 else "proxyAdminPort must be a port",
    "drainDuration": lambda v: None if isinstance(v, str) and _DURATION.fullmatch(v) else
    "drainDuration must be a duration (e.g. 45s)",
    "terminationDrainDuration": lambda v: None if isinstance(v, str) and _DURATION.fullmatch(v) else
    "terminationDrainDuration must be a duration (e.g. 5s)",
    "discoveryAddress": lambda v: None if isinstance(v, str) and host_port(v) is None else
    "discoveryAddress must be HOST:PORT",
    "proxyMetadata": lambda v: None if isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    else "proxyMetadata must map names to strings",
}


def proxy_config(value: str) -> str | None:
    """A ProxyConfig in YAML (or JSON): a mapping, with the fields whose type the
    proxy checks of the right type."""
    import yaml

    try:
        parsed = yaml.safe_load(value) if value.strip() else {}
    except yaml.YAMLError as exc:
        return f"not valid YAML ({str(exc).splitlines()[0]})"
    if parsed is None:
        return None
    if not isinstance(parsed, dict):
        return "a ProxyConfig mapping (YAML) expected"
    problems = [p for key, check in _PROXY_CONFIG_CHECKS.items() if key in parsed for p in [check(parsed[key])] if p]
    return "; ".join(problems) or None


# name -> check; the first group is what Istio's injector validates, the second ours.
FORMATS = {
    "sidecar.istio.io/interceptionMode": one_of("REDIRECT", "TPROXY", "NONE"),
    "status.sidecar.istio.io/port": port,
    "readiness.status.sidecar.istio.io/initialDelaySeconds": uint32,
    "readiness.status.sidecar.istio.io/periodSeconds": uint32,
    "readiness.status.sidecar.istio.io/failureThreshold": uint32,
    "traffic.sidecar.istio.io/includeOutboundIPRanges": cidrs_or_star,
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": cidrs,
    "traffic.sidecar.istio.io/includeInboundPorts": ports_or_star,
    "traffic.sidecar.istio.io/excludeInboundPorts": ports,
    "traffic.sidecar.istio.io/excludeOutboundPorts": ports,
    "prometheus.istio.io/merge-metrics": boolean,
    "proxy.istio.io/config": proxy_config,
    # ours
    "traffic.sidecar.istio.io/includeOutboundPorts": ports,
    "readiness.status.sidecar.istio.io/applicationPorts": ports,
    "sidecar.istio.io/rewriteAppHTTPProbers": boolean,
    "sidecar.istio.io/enableCoreDump": boolean,
    "sidecar.istio.io/nativeSidecar": boolean,
    "sidecar.istio.io/logLevel": one_of(*ENVOY_LEVELS),
    "sidecar.istio.io/componentLogLevel": scoped_levels(ENVOY_LEVELS, bare=False),
    "sidecar.istio.io/agentLogLevel": scoped_levels(AGENT_LEVELS, bare=True),
    "sidecar.istio.io/proxyImageType": one_of("default", "debug", "distroless"),
    "sidecar.istio.io/userVolume": json_value((dict, list), "object (name -> volume)"),
    "sidecar.istio.io/userVolumeMount": json_value((dict, list), "object (name -> volume mount)"),
    "sidecar.istio.io/statsHistogramBuckets": histogram_buckets,
    "sidecar.istio.io/discoveryAddress": host_port,
}
# What istioctl analyze itself validates (the rest is ours, beyond it).
ISTIOCTL_VALIDATES = frozenset(list(FORMATS)[:12])
