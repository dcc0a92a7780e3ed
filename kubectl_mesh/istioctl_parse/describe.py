"""``istioctl x describe pod|service`` text read into plain data, and its warnings listed."""

from __future__ import annotations

from kubectl_mesh.istioctl_parse._common import _plain, _split_list, _text_lines
from kubectl_mesh.istioctl_parse.describe_patterns import (
    _APPLIED,
    _EFFECTIVE_PA,
    _ERROR,
    _EXPOSED,
    _GATEWAY_ALL_WORKLOADS,
    _POD,
    _POD_MESSAGE,
    _POD_NO_PORTS,
    _POD_NOT_RUNNING,
    _POD_PORT_ITEM,
    _POD_PORTS,
    _POD_REVISION,
    _PORT_MTLS,
    _PORT_MTLS_HEADER,
    _RBAC,
    _SEPARATOR,
    _SERVICE,
    _SERVICE_NO_ISTIO_PODS,
    _SERVICE_NO_PODS,
    _SERVICE_PORT,
    _SERVICE_PORT_HEADER,
    _SKIPPING_GATEWAY,
    _SUGGESTION,
    _WARNING,
    _WORKLOAD_MTLS,
    _classify_warning,
    _qualified,
    _split_pod_name,
    _split_service_name,
)
from kubectl_mesh.istioctl_parse.describe_traffic import _TrafficLines


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


class _DescribeParser(_TrafficLines):
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
