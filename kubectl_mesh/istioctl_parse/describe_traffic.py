"""The DestinationRule and VirtualService lines of a describe: a mixin of the describe parser."""

from __future__ import annotations

from kubectl_mesh.istioctl_parse._common import _split_list
from kubectl_mesh.istioctl_parse.describe_patterns import (
    _ADDITIONAL,
    _DESTINATION_RULE,
    _FACT_SPLIT,
    _MATCHING_SUBSETS,
    _NO_TRAFFIC_POLICY,
    _NON_MATCHING_SUBSETS,
    _OLD_POLICIES,
    _OLD_ROUTE_OTHER_HOST,
    _OLD_WEIGHT,
    _POLICIES,
    _PORT_LEVEL_PORT,
    _PORT_LEVEL_SETTINGS,
    _PORT_LEVEL_TLS,
    _ROUTE,
    _ROUTE_COUNT,
    _ROUTE_INVALID,
    _ROUTE_NON_MATCHING,
    _TRAFFIC_POLICY_TLS,
    _VIRTUAL_SERVICE,
)


class _TrafficLines:
    """Handlers for the lines under a DestinationRule or a VirtualService.

    Mixed into ``describe._DescribeParser``, whose state (``result``,
    ``section``, ``service_port``, ``dr``, ``vs``, ``port_level``,
    ``in_port_level``, ``ingress_group``, ``ingress_group_done``) and
    ``close_objects`` / ``ensure_service`` these use.
    """

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
