"""kubectl_mesh.istioctl_parse against real istioctl output (tests/data/istioctl/SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_mesh.istioctl_parse import (
    WARNING_CODES,
    describe_warnings,
    parse_describe,
    parse_routes,
    routes_from_config_dump,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "istioctl"
DESCRIBE = DATA / "describe"
ROUTE_CASES = sorted(p.name for p in (DATA / "routes").iterdir() if p.is_dir())
DESCRIBE_FILES = sorted(p.name for p in DESCRIBE.glob("*.txt"))
ROUTE_KEYS = ("name", "vhostName", "domains", "match", "virtualService")
POLICIES = ["load balancer", "connection pool", "outlier detection"]
BOOKINFO_ROUTES = [
    {"host": "productpage", "weight": 30},
    {"host": "productpage2", "weight": 20},
    {"host": "productpage3", "weight": 50},
]


def describe(name: str) -> dict:
    return parse_describe((DESCRIBE / name).read_text(encoding="utf-8"))


def routes_case(case: str) -> tuple[str, dict]:
    folder = DATA / "routes" / case
    text = (folder / "output.txt").read_text(encoding="utf-8")
    return text, json.loads((folder / "configdump.json").read_text(encoding="utf-8"))


def tabwrite(rows: list[list[str]], padding: int = 5) -> str:
    """Go's text/tabwriter as istioctl sets it up (minwidth 0, padding 5, ' ').

    Every cell but the last of a line is padded to its column's widest cell
    plus the padding; the last cell is written as it is.
    """
    columns = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) + padding for i in range(columns)]
    return "".join(
        "".join(row[i].ljust(widths[i]) for i in range(columns)) + row[-1] + "\n" for row in rows
    )


ROUTES_HEADER = ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]


def empty_describe_shape(parsed: dict) -> None:
    assert parsed["pod"] is None
    assert parsed["effectivePeerAuthentication"] is None
    for key in ("services", "ingress", "appliedPeerAuthentications", "warnings",
                "suggestions", "errors", "notes"):
        assert parsed[key] == [], key


# ---------------------------------------------------------------------------
# describe: the real reference outputs (describe service)
# ---------------------------------------------------------------------------


def check_bookinfo_vs(vs: dict) -> None:
    assert vs["name"] == "bookinfo"
    assert vs["routes"] == BOOKINFO_ROUTES
    assert [r["weight"] for r in vs["routes"]] == [30, 20, 50]
    assert all("subset" not in r for r in vs["routes"])
    assert vs["matches"] == ["/prefix*"]
    assert vs["nonMatchingRoutes"] == []
    assert vs["additionalDestinations"] is None


def check_productpage_service(parsed: dict, *, with_policy: bool) -> None:
    assert parsed["pod"] is None  # describe service prints no pod header
    assert len(parsed["services"]) == 1
    service = parsed["services"][0]
    assert service["name"] == "productpage"
    assert service["namespace"] is None
    assert service["ports"] == []
    dr = service["destinationRule"]
    assert service["destinationRules"] == [dr]
    assert dr["name"] == "productpage"
    assert dr["host"] == "productpage"
    assert dr["matchingSubsets"] == []
    assert dr["nonMatchingSubsets"] == ["v1"]
    if with_policy:
        assert dr["trafficPolicy"] == {"tlsMode": "ISTIO_MUTUAL", "policies": POLICIES}
        assert dr["portLevelSettings"] == [
            {"port": 8080, "tlsMode": "DISABLE", "policies": POLICIES}
        ]
    else:
        assert dr["trafficPolicy"] is None
        assert dr["portLevelSettings"] == []
    assert len(service["virtualServices"]) == 1
    check_bookinfo_vs(service["virtualServices"][0])
    assert parsed["warnings"] == [
        {
            "code": "pod-matches-no-subset",
            "message": "WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets v1)",
            "subject": "productpage",
            "subsets": ["v1"],
            "context": {
                "section": "service",
                "service": "productpage",
                "servicePort": None,
                "destinationRule": "productpage",
                "virtualService": None,
            },
        }
    ]
    assert parsed["effectivePeerAuthentication"] is None
    assert parsed["appliedPeerAuthentications"] == []
    assert parsed["unparsed"] == []


def test_describe_service_ingress():
    parsed = describe("describe-service-ingress.txt")
    check_productpage_service(parsed, with_policy=True)
    assert [entry["url"] for entry in parsed["ingress"]] == ["http://1.1.1.1", "http://2.2.2.2"]
    for entry in parsed["ingress"]:
        # One VirtualService printed after both URLs: it applies to each.
        assert len(entry["virtualServices"]) == 1
        check_bookinfo_vs(entry["virtualServices"][0])
    # The copies are independent (no aliasing in the result).
    parsed["ingress"][0]["virtualServices"][0]["routes"].clear()
    assert parsed["ingress"][1]["virtualServices"][0]["routes"] == BOOKINFO_ROUTES


def test_describe_service_with_policy():
    parsed = describe("describe-service-with-policy.txt")
    check_productpage_service(parsed, with_policy=True)
    assert parsed["ingress"] == []


def test_describe_service_no_policy():
    parsed = describe("describe-service-no-policy.txt")
    check_productpage_service(parsed, with_policy=False)
    assert parsed["ingress"] == []


def test_describe_service_warning_attribution():
    (item,) = describe_warnings(describe("describe-service-ingress.txt"))
    assert item["code"] == "pod-matches-no-subset"
    assert item["pod"] is None
    assert item["service"] == "productpage"
    assert item["destinationRule"] == "productpage"
    assert item["virtualService"] is None
    assert "context" not in item


# ---------------------------------------------------------------------------
# describe pod: constructed fixtures (see SOURCES.md)
# ---------------------------------------------------------------------------


def test_describe_pod_canary_stable():
    parsed = describe("pod-canary-stable.txt")
    assert parsed["pod"] == {
        "name": "my-app-7c9d8f6b5-x2x7k",
        "namespace": None,  # described with -n my-app: istioctl leaves it out
        "revision": "default",
        "ports": [
            {"port": 8080, "protocol": "TCP", "container": "my-app"},
            {"port": 15090, "protocol": "TCP", "container": "istio-proxy"},
        ],
        "phase": None,
    }
    (service,) = parsed["services"]
    assert service["name"] == "my-app"
    assert service["ports"] == [{"name": "http", "port": 80, "protocol": "HTTP", "targetPort": 8080}]
    dr = service["destinationRule"]
    assert (dr["name"], dr["host"]) == ("my-app", "my-app")
    assert dr["matchingSubsets"] == ["stable"]
    assert dr["nonMatchingSubsets"] == ["canary"]
    assert dr["trafficPolicy"] is None
    (vs,) = service["virtualServices"]
    assert vs["name"] == "my-app"
    assert vs["routes"] == [{"host": "my-app", "subset": "stable", "weight": 90}]
    assert vs["matches"] == []
    assert parsed["effectivePeerAuthentication"] == {
        "workloadMtlsMode": "STRICT",
        "portLevelMtlsModes": [],
    }
    assert parsed["appliedPeerAuthentications"] == ["default.istio-system", "strict-mtls.my-app"]
    assert parsed["appliedConfigs"] == {
        "PeerAuthentication": ["default.istio-system", "strict-mtls.my-app"]
    }
    assert parsed["ingress"] == []
    assert parsed["ingressSkipped"] == "no ingress gateway pods"
    assert parsed["warnings"] == []
    assert parsed["unparsed"] == []


def test_describe_pod_canary_native_sidecar_qualified_names():
    parsed = describe("pod-canary-native-sidecar.txt")
    pod = parsed["pod"]
    assert (pod["name"], pod["namespace"]) == ("my-app-canary-5d8f7b9c4-m4n7p", "my-app")
    # A native sidecar is an init container: its port is not listed.
    assert pod["ports"] == [{"port": 8080, "protocol": "TCP", "container": "my-app"}]
    (service,) = parsed["services"]
    assert (service["name"], service["namespace"]) == ("my-app", "my-app")
    dr = service["destinationRule"]
    assert (dr["name"], dr["host"]) == ("my-app.my-app", "my-app")
    assert dr["matchingSubsets"] == ["canary"]
    assert dr["nonMatchingSubsets"] == ["stable"]
    assert service["virtualServices"][0]["name"] == "my-app.my-app"
    assert service["virtualServices"][0]["routes"] == [
        {"host": "my-app", "subset": "canary", "weight": 10}
    ]
    assert parsed["effectivePeerAuthentication"]["workloadMtlsMode"] == "STRICT"
    assert parsed["unparsed"] == []


def test_describe_pod_subset_mismatch():
    parsed = describe("pod-subset-mismatch.txt")
    assert parsed["pod"]["name"] == "backend-api-6d5b9c7f4d-q8zrl"
    assert [p["port"] for p in parsed["pod"]["ports"]] == [8080, 9090, 15090]
    assert parsed["suggestions"] == [(
        "Suggestion: add required service revision label for Istio telemetry. "
        "See https://istio.io/latest/docs/ops/deployment/application-requirements/."
    )]
    api, canary = parsed["services"]

    assert api["name"] == "backend-api"
    dr = api["destinationRule"]
    assert dr["matchingSubsets"] == []
    assert dr["nonMatchingSubsets"] == ["v1", "v2"]
    # A traffic policy without TLS: policies only.
    assert dr["trafficPolicy"] == {"tlsMode": None,
                                   "policies": ["connection pool", "outlier detection"]}
    (vs,) = api["virtualServices"]
    assert vs["routes"] == []
    assert vs["nonMatchingRoutes"] == [
        {"subset": "v1", "matches": ["/api*"]},
        {"subset": "v2", "matches": ["/api*"]},
    ]

    assert canary["name"] == "backend-api-canary"
    assert [p["port"] for p in canary["ports"]] == [80, 9090]
    assert canary["ports"][1] == {"name": "grpc", "port": 9090, "protocol": "GRPC",
                                  "targetPort": 9090}
    assert canary["destinationRule"] is None
    assert [(v["name"], v["servicePort"]) for v in canary["virtualServices"]] == [
        ("backend-api-canary", 80), ("backend-api-canary", 9090)
    ]

    assert parsed["effectivePeerAuthentication"] == {
        "workloadMtlsMode": "PERMISSIVE",
        "portLevelMtlsModes": [{"port": 9090, "mode": "DISABLE"}],
    }
    assert parsed["appliedPeerAuthentications"] == ["backend-api-ports.my-app"]
    assert [w["code"] for w in parsed["warnings"]] == [
        "proxy-not-ready",
        "pod-matches-no-subset",
        "no-destination-matches",
        "unknown-subset",
        "no-destination-matches",
        "subset-without-destination-rule",
        "no-destination-matches",
        "subset-without-destination-rule",
    ]
    assert parsed["unparsed"] == []

    items = describe_warnings(parsed)
    assert all(item["pod"] == "backend-api-6d5b9c7f4d-q8zrl" for item in items)
    assert [item["service"] for item in items] == [
        None, "backend-api", "backend-api", "backend-api",
        "backend-api-canary", "backend-api-canary", "backend-api-canary", "backend-api-canary",
    ]
    unknown = items[3]
    assert (unknown["subject"], unknown["destinationRule"], unknown["virtualService"]) == (
        "v4", "backend-api", "backend-api")
    assert items[1]["destinationRule"] == "backend-api"
    assert items[2]["routesChecked"] == 2 and items[2]["routeType"] == "HTTP"
    assert items[5]["subject"] == "v3"


def test_describe_pod_not_in_mesh():
    parsed = describe("pod-not-in-mesh.txt")
    pod = parsed["pod"]
    assert pod["name"] == "legacy-client-5f7b8c9d6-kq2mz"
    assert pod["revision"] is None  # "   Pod Revision: " (empty)
    assert parsed["services"] == []
    assert [(w["code"], w.get("subject")) for w in parsed["warnings"]] == [
        ("not-in-mesh", "legacy-client-5f7b8c9d6-kq2mz"),
        ("other", "legacy-client-5f7b8c9d6-kq2mz"),
    ]
    assert parsed["errors"] == [(
        "failed to execute command on sidecar: failure running port forward process: "
        "pod legacy-client-5f7b8c9d6-kq2mz has no istio-proxy container"
    )]
    assert [i["pod"] for i in describe_warnings(parsed)] == ["legacy-client-5f7b8c9d6-kq2mz"] * 2
    assert parsed["unparsed"] == []


def test_describe_pod_productpage_ingress():
    parsed = describe("pod-productpage-ingress.txt")
    (service,) = parsed["services"]
    dr = service["destinationRule"]
    assert dr["matchingSubsets"] == ["v1"]
    assert dr["nonMatchingSubsets"] == []
    assert dr["trafficPolicy"] == {"tlsMode": "ISTIO_MUTUAL", "policies": []}
    (vs,) = service["virtualServices"]
    assert vs["routes"] == [{"host": "productpage", "subset": "v1", "weight": 100}]
    assert vs["matches"] == ["when headers are end-user=jason"]
    assert service["rbacPolicies"] == ["ns[bookinfo]-policy[productpage-viewer]-rule[0]"]
    assert parsed["effectivePeerAuthentication"] == {
        "workloadMtlsMode": "PERMISSIVE", "portLevelMtlsModes": []}
    assert parsed["appliedPeerAuthentications"] == []
    (entry,) = parsed["ingress"]
    assert entry["url"] == "http://35.190.12.4"
    (gateway_vs,) = entry["virtualServices"]
    assert gateway_vs["name"] == "bookinfo"
    assert gateway_vs["routes"] == []
    assert gateway_vs["matches"] == ["/productpage", "/static*", "/login", "/logout",
                                     "/api/v1/products*"]
    assert parsed["warnings"] == []
    assert parsed["unparsed"] == []


# ---------------------------------------------------------------------------
# describe: single lines
# ---------------------------------------------------------------------------

WARNING_LINES = [
    ("WARNING: reviews-v1-abc.bookinfo is not part of mesh; no Istio sidecar",
     "not-in-mesh", {"subject": "reviews-v1-abc.bookinfo"}),
    ("   WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets v1)",
     "pod-matches-no-subset", {"subsets": ["v1"]}),
    # istioctl before 1.20 indented this line by two spaces, not three.
    ("  WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets v1,v2)",
     "pod-matches-no-subset", {"subsets": ["v1", "v2"]}),
    ("      Warning: Route to subset v3 but NO DESTINATION RULE defining subsets!",
     "subset-without-destination-rule", {"subject": "v3"}),
    ("      Warning: Route to UNKNOWN subset v9; check DestinationRule reviews.bookinfo",
     "unknown-subset", {"subject": "v9", "destinationRule": "reviews.bookinfo"}),
    ("   WARNING: No destinations match pod subsets (checked 3 HTTP routes)",
     "no-destination-matches", {"routesChecked": 3, "routeType": "HTTP"}),
    ("   WARNING: No destinations match pod subsets (checked 1 TCP routes)",
     "no-destination-matches", {"routesChecked": 1, "routeType": "TCP"}),
    ("WARNING: Pod reviews-v1-abc Container istio-proxy NOT READY",
     "proxy-not-ready", {"subject": "reviews-v1-abc", "container": "istio-proxy",
                         "initContainer": False}),
    # A native sidecar is an init container.
    ("WARNING: Pod reviews-v1-abc Init Container istio-proxy NOT READY",
     "proxy-not-ready", {"subject": "reviews-v1-abc", "initContainer": True}),
    ("WARNING: Pod reviews-v1-abc Container reviews NOT READY",
     "other", {"subject": "reviews-v1-abc", "container": "reviews"}),
    ("WARNING: Proxy is stale; it references to non-existent destination rule reviews.bookinfo",
     "other", {"subject": "reviews.bookinfo", "kind": "destination rule"}),
    ("WARNING: User ID (UID) 1337 is reserved for the sidecar proxy.", "other", {}),
    ("   WARNING: User ID (UID) 1337 is reserved for the sidecar proxy.", "other", {}),
    ("Warning: No Kubernetes Services select pod x (see https://istio.io/docs/ )",
     "other", {"subject": "x"}),
    ("Warning: something istioctl adds one day", "other", {}),
]


@pytest.mark.parametrize(("line", "code", "details"), WARNING_LINES)
def test_each_warning_kind_from_one_line(line, code, details):
    parsed = parse_describe(line + "\n")
    (warning,) = parsed["warnings"]
    assert warning["code"] == code
    assert warning["message"] == line.strip()
    for key, value in details.items():
        assert warning[key] == value
    assert code in WARNING_CODES
    assert parsed["unparsed"] == []


def test_every_warning_code_is_covered():
    assert {code for _line, code, _d in WARNING_LINES} == set(WARNING_CODES)


@pytest.mark.parametrize(("ports", "expected"), [
    # The README's notation.
    ("9080/TCP (app), 15090/HTTP (istio-proxy)",
     [(9080, "TCP", "app"), (15090, "HTTP", "istio-proxy")]),
    # istioctl's: /TCP left out, other protocols shown.
    ("9080 (app), 53/UDP (dns), 9090/SCTP (app)",
     [(9080, "TCP", "app"), (53, "UDP", "dns"), (9090, "SCTP", "app")]),
])
def test_pod_ports_notations(ports, expected):
    parsed = parse_describe(f"Pod: app-1.ns\n   Pod Revision: canary\n   Pod Ports: {ports}\n")
    pod = parsed["pod"]
    assert (pod["name"], pod["namespace"], pod["revision"]) == ("app-1", "ns", "canary")
    assert [(p["port"], p["protocol"], p["container"]) for p in pod["ports"]] == expected


def test_pod_without_ports_and_not_running():
    parsed = parse_describe("Pod: job-x\n   Pod Revision: default\n   Pod does not expose ports\n"
                            "   Pod is not Running (Pending)\n")
    assert parsed["pod"]["ports"] == []
    assert parsed["pod"]["phase"] == "Pending"
    assert parsed["unparsed"] == []


def test_routes_with_subsets_invalid_config_and_counts():
    lines = (
        "VirtualService: reviews",
        '   Route to host "reviews" subset "v2" with weight 25%',
        '   Route to host "ratings" with weight 0%',
        "   Route to ratings with invalid config",
        "   Fault injection delay:{fixed_delay:{seconds:7}}, Match: /reviews* uncased, Match: /r2",
        "   2 additional destination(s) that will not reach this pod",
        "   1 TCP route(s)",
        "   destination_subnets:\"10.0.0.0/8\"",
    )
    text = "\n".join(lines)
    (service,) = parse_describe(text)["services"]
    (vs,) = service["virtualServices"]
    assert vs["routes"] == [
        {"host": "reviews", "subset": "v2", "weight": 25},
        {"host": "ratings", "weight": 0},
        {"host": "ratings", "weight": None, "invalidConfig": True},
    ]
    assert vs["matches"] == ["/reviews* uncased", "/r2"]
    assert vs["additionalDestinations"] == 2
    assert vs["otherFacts"] == [
        "Fault injection delay:{fixed_delay:{seconds:7}}",
        "1 TCP route(s)",
        'destination_subnets:"10.0.0.0/8"',
    ]


def test_non_matching_route_for_everything():
    text = ("VirtualService: r\n   WARNING: No destinations match pod subsets (checked 1 HTTP routes)\n"
            "      Route to non-matching subset v1 for (everything)\n")
    vs = parse_describe(text)["services"][0]["virtualServices"][0]
    assert vs["nonMatchingRoutes"] == [{"subset": "v1", "matches": []}]


def test_older_istioctl_layout():
    """istioctl 1.5-1.8: port prefix on the same line, "Weight N%", bare policies."""
    lines = (
        "Service: reviews",
        "   Port: http 9080/HTTP targets pod port 9080",
        "   Port:  9081/auto-detect targets pod port 9081",
        '9080 DestinationRule: reviews for "reviews"',
        "   Matching subsets: v1,v2",
        "   Traffic Policy TLS Mode: ISTIO_MUTUAL",
        "   load balancer/port level settings",
        "9080 VirtualService: reviews",
        "   Weight 75%",
        "9080 RBAC policies: ns[default]-policy[a]-rule[0], ns[default]-policy[b]-rule[0]",
        "",
        "",
        "Exposed on Ingress Gateway http://10.0.0.1:8080",
        "VirtualService: gw-vs",
        "   Match: /reviews",
    )
    text = "\n".join(lines)
    parsed = parse_describe(text)
    (service,) = parsed["services"]
    assert service["ports"][1] == {"name": "", "port": 9081, "protocol": "auto-detect",
                                   "targetPort": 9081}
    dr = service["destinationRule"]
    assert dr["servicePort"] == 9080
    assert dr["matchingSubsets"] == ["v1", "v2"]
    assert dr["trafficPolicy"] == {"tlsMode": "ISTIO_MUTUAL",
                                   "policies": ["load balancer", "port level settings"]}
    vs = service["virtualServices"][0]
    assert (vs["servicePort"], vs["routes"]) == (9080, [{"host": None, "weight": 75}])
    assert service["rbacPolicies"] == ["ns[default]-policy[a]-rule[0]",
                                       "ns[default]-policy[b]-rule[0]"]
    assert parsed["ingress"][0]["url"] == "http://10.0.0.1:8080"
    assert parsed["ingress"][0]["virtualServices"][0]["matches"] == ["/reviews"]
    assert parsed["unparsed"] == []


def test_gateway_for_all_workloads_runs_into_the_next_line():
    # istioctl prints this message without a newline.
    text = ("Ingress Gateway istio-system/gw be applyed all workloads--------------------\n"
            "Exposed on Ingress Gateway http://1.2.3.4\nVirtualService: vs\n"
            '   Route to host "a" with weight 100%\n')
    parsed = parse_describe(text)
    assert parsed["notes"] == ["Ingress Gateway istio-system/gw be applyed all workloads"]
    assert parsed["ingress"][0]["url"] == "http://1.2.3.4"
    assert parsed["ingress"][0]["virtualServices"][0]["routes"] == [{"host": "a", "weight": 100}]


def test_service_without_istio_pods_and_suggestions():
    text = ("WARNING: Pod web-1 Container istio-proxy NOT READY\n"
            'Service "web" has no Istio pods.  (2 pods in service).\n'
            "Use `istioctl kube-inject` or redeploy with Istio automatic sidecar injection.\n"
            "Pod web-2: no container \"istio-proxy\" in pod\n")
    parsed = parse_describe(text)
    assert [w["code"] for w in parsed["warnings"]] == ["proxy-not-ready"]
    assert parsed["notes"] == ['Service "web" has no Istio pods.  (2 pods in service).',
                               'Pod web-2: no container "istio-proxy" in pod']
    assert parsed["suggestions"] == [
        "Use `istioctl kube-inject` or redeploy with Istio automatic sidecar injection."]
    assert describe_warnings(parsed)[0]["pod"] == "web-1"


def test_unknown_lines_are_kept_not_fatal():
    parsed = parse_describe("Something new in istioctl 2.0\n   Matching subsets: v1\n")
    assert parsed["unparsed"] == ["Something new in istioctl 2.0", "Matching subsets: v1"]
    assert parsed["services"] == []


@pytest.mark.parametrize("name", DESCRIBE_FILES)
def test_crlf_trailing_spaces_and_blank_lines_change_nothing(name):
    text = (DESCRIBE / name).read_text(encoding="utf-8")
    expected = parse_describe(text)
    assert parse_describe(text.replace("\n", "\r\n")) == expected
    assert parse_describe(text.encode()) == expected
    noisy = "\n".join(line + "   \t" + ("\n" if i % 2 else "") for i, line in
                      enumerate(text.splitlines()))
    assert parse_describe(noisy) == expected
    json.dumps(expected)


@pytest.mark.parametrize("junk", ["", "\n\n  \n", None, b"", 42, ["Pod: x"], "-" * 20])
def test_empty_or_malformed_describe(junk):
    parsed = parse_describe(junk)
    empty_describe_shape(parsed)
    assert describe_warnings(parsed) == []


@pytest.mark.parametrize("junk", [None, 42, "text", [], {"warnings": "x"}, {"warnings": [1, None]}])
def test_describe_warnings_on_junk(junk):
    assert describe_warnings(junk) == []


# ---------------------------------------------------------------------------
# proxy-config routes: the real reference outputs
# ---------------------------------------------------------------------------

EXPECTED_ROUTES = {
    # Blank NAMEs here are unnamed (static) RouteConfigurations; see
    # test_text_and_dump_agree_fully_without_carrying_names.
    "empty-gateway": [
        ("", "backend", "*", "/healthz/ready*", ""),
        ("", "backend", "*", "/stats/prometheus*", ""),
    ],
    "istio-gateway-http-route-prefix": [
        ("http.8080", "httpbin.example.com:80", "httpbin.example.com", "/get*",
         "httpbin.default"),
        ("http.8080", "backend", "*", "/stats/prometheus*", ""),
        ("http.8080", "backend", "*", "/healthz/ready*", ""),
    ],
    "k8s-gateway-http-route-path-prefix": [
        ("http.80", "httpbin.example.com:80", "httpbin.example.com", "PathPrefix:/get",
         "http-0-istio-autogenerated-k8s-gateway.default"),
        ("http.80", "backend", "*", "/healthz/ready*", ""),
        ("http.80", "backend", "*", "/stats/prometheus*", ""),
    ],
}


def as_tuples(rows):
    return [tuple(row[key] for key in ROUTE_KEYS) for row in rows]


@pytest.mark.parametrize("case", ROUTE_CASES)
def test_parse_routes_reference(case):
    text, _dump = routes_case(case)
    rows = parse_routes(text)
    assert all(set(row) == set(ROUTE_KEYS) for row in rows)
    assert as_tuples(rows) == EXPECTED_ROUTES[case]


def test_reference_cases_are_all_checked():
    assert set(ROUTE_CASES) == set(EXPECTED_ROUTES)


@pytest.mark.parametrize("case", ROUTE_CASES)
def test_text_and_dump_agree_on_vhost_domains_match(case):
    text, dump = routes_case(case)
    from_text = parse_routes(text)
    from_dump = routes_from_config_dump(dump)

    def triples(rows):
        return [(r["vhostName"], r["domains"], r["match"]) for r in rows]

    assert triples(from_text) == triples(from_dump)
    assert [r["virtualService"] for r in from_text] == [r["virtualService"] for r in from_dump]


@pytest.mark.parametrize("case", ROUTE_CASES)
def test_text_and_dump_agree_fully_without_carrying_names(case):
    # They cannot agree on NAME with the name carried down: istioctl prints
    # each row's RouteConfiguration name, and the `backend` rows come from
    # static RouteConfigurations, which have no name. Carrying "http.8080"
    # down onto them attributes Envoy's own /healthz and /stats routes to the
    # gateway's RouteConfiguration. Read literally, the text agrees in full.
    text, dump = routes_case(case)
    from_dump = routes_from_config_dump(dump)
    assert parse_routes(text, carry_name=False) == from_dump
    if any(row["name"] for row in from_dump):
        carried = parse_routes(text)
        assert [r["name"] for r in carried] != [r["name"] for r in from_dump]


@pytest.mark.parametrize("case", ROUTE_CASES)
def test_dump_rows_printed_like_istioctl_reproduce_the_output(case):
    # Our tabwriter, fed the rows from the dump, writes istioctl's output
    # byte for byte: the rows are what istioctl prints.
    text, dump = routes_case(case)
    rows = [[r[key] for key in ROUTE_KEYS] for r in routes_from_config_dump(dump)]
    assert tabwrite([ROUTES_HEADER] + rows) == text


@pytest.mark.parametrize("case", ROUTE_CASES)
def test_dump_as_printed_by_o_json(case):
    # `proxy-config routes -o json` prints the RouteConfiguration list.
    _text, dump = routes_case(case)
    route_dump = dump["configs"][0]
    listed = [entry["route_config"] for entry in route_dump.get("dynamic_route_configs", [])]
    listed += [entry["route_config"] for entry in route_dump.get("static_route_configs", [])]
    expected = routes_from_config_dump(dump)
    assert routes_from_config_dump(listed) == expected
    assert routes_from_config_dump(route_dump) == expected
    assert routes_from_config_dump(json.dumps(listed)) == expected


def test_routes_table_inside_proxy_config_all():
    rows = parse_routes((DATA / "config_dump_summary.txt").read_text(encoding="utf-8"))
    assert rows == [{
        "name": "inbound-vip|8000|http|httpbin.default.svc.cluster.local",
        "vhostName": "inbound|http|8000",
        "domains": "*",
        "match": "/*",
        "virtualService": "",
    }]


# ---------------------------------------------------------------------------
# proxy-config routes: cells with spaces, odd layouts
# ---------------------------------------------------------------------------

SPACED_ROWS = [
    ["9080", "reviews.bookinfo.svc.cluster.local:9080", "reviews, reviews.bookinfo + 2 more...",
     "/*", "reviews.bookinfo"],
    ["", "ratings.bookinfo.svc.cluster.local:9080", "ratings, ratings.bookinfo", "regex ^/r[0-9]+",
     ""],
    ["", "allow_any", "*", "/*", "404"],
    ["inbound|9080||", "inbound|http|9080", "*", "/v1/api* (x)", "a b.c"],
]


def test_cells_with_spaces_are_cut_at_the_header_columns():
    text = tabwrite([ROUTES_HEADER] + SPACED_ROWS)
    rows = parse_routes(text, carry_name=False)
    assert [[r[k] for k in ROUTE_KEYS] for r in rows] == SPACED_ROWS
    carried = parse_routes(text)
    assert [r["name"] for r in carried] == ["9080", "9080", "9080", "inbound|9080||"]
    # Splitting on whitespace would have broken these.
    assert carried[0]["domains"] == "reviews, reviews.bookinfo + 2 more..."
    assert carried[1]["match"] == "regex ^/r[0-9]+"


def test_tab_separated_and_crlf_tables():
    tabbed = "\r\n".join("\t".join(row) for row in [ROUTES_HEADER] + SPACED_ROWS) + "\r\n"
    assert [[r[k] for k in ROUTE_KEYS] for r in parse_routes(tabbed, carry_name=False)] == \
        SPACED_ROWS
    spaced = tabwrite([ROUTES_HEADER] + SPACED_ROWS).replace("\n", "\r\n")
    assert parse_routes(spaced) == parse_routes(tabwrite([ROUTES_HEADER] + SPACED_ROWS))


def test_misaligned_cell_does_not_split_a_word():
    text = ("NAME   VHOST NAME   DOMAINS   MATCH   VIRTUAL SERVICE\n"
            "80     backend      *         /a*     vs.ns\n"
            "80     averyveryverylongvhost *  /b*  vs2.ns\n")
    rows = parse_routes(text)
    assert rows[0] == {"name": "80", "vhostName": "backend", "domains": "*", "match": "/a*",
                       "virtualService": "vs.ns"}
    assert rows[1]["vhostName"] == "averyveryverylongvhost"


def test_older_header_without_vhost_name():
    text = tabwrite([["NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
                     ["9080", "reviews, reviews.default", "/*", "reviews.default"]])
    assert parse_routes(text) == [{"name": "9080", "vhostName": "", "domains":
                                   "reviews, reviews.default", "match": "/*",
                                   "virtualService": "reviews.default"}]


def test_two_tables_and_a_table_with_no_rows():
    one = tabwrite([ROUTES_HEADER, ["a", "v", "*", "/x*", ""]])
    two = tabwrite([ROUTES_HEADER, ["", "w", "*", "/y*", ""]])
    rows = parse_routes(one + "\n" + two + "\n" + tabwrite([ROUTES_HEADER]))
    # A new table starts afresh: nothing is carried across tables.
    assert [(r["name"], r["vhostName"]) for r in rows] == [("a", "v"), ("", "w")]


@pytest.mark.parametrize("junk", ["", None, b"", 7, "NAME VIRTUAL HOSTS\n80 2\n",
                                  "no table here", "NAME\n", "VIRTUAL SERVICE\n" * 3])
def test_empty_or_malformed_routes(junk):
    assert parse_routes(junk) == []


# ---------------------------------------------------------------------------
# routes_from_config_dump: istioctl's rendering
# ---------------------------------------------------------------------------


def route_config(name, vhosts):
    return {"name": name, "virtual_hosts": vhosts}


def vhost(name, domains, routes):
    return {"name": name, "domains": domains, "routes": routes}


def test_domains_rendering():
    dump = [route_config("9080", [
        vhost("a", ["reviews.bookinfo.svc.cluster.local", "reviews.bookinfo.svc.cluster.local:9080",
                    "reviews", "reviews:9080", "reviews.bookinfo.svc", "reviews.bookinfo",
                    "reviews.bookinfo:9080", "10.96.1.2", "10.96.1.2:9080"],
              [{"match": {"prefix": "/"}}]),
        vhost("b", ["[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:8090", "x.y"],
              [{"match": {"path": "/exact"}}]),
        vhost("c", [], [{"match": {"safe_regex": {"regex": "^/r.*"}}}]),
        vhost("d", ["only:80"], [{"match": {"prefix": ""}}]),
    ])]
    rows = routes_from_config_dump(dump)
    # .svc.cluster.local and .svc forms collapse onto the shorter name when present.
    assert rows[0]["domains"] == "reviews, reviews.bookinfo + 1 more..."
    assert rows[0]["match"] == "/*"
    assert rows[1]["domains"] == "[fd00:10:96::7fc7], x.y"
    assert rows[1]["match"] == "/exact"
    assert (rows[2]["domains"], rows[2]["match"]) == ("", "regex ^/r.*")
    assert (rows[3]["domains"], rows[3]["match"]) == ("only:80", "")


def test_passthrough_empty_vhost_virtual_service_and_order():
    dump = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
         "static_route_configs": [{"route_config": route_config("", [
             vhost("backend", ["*"], [{"match": {"prefix": "/stats"}}])])}],
         "dynamic_route_configs": [
             {"route_config": route_config("15010", [vhost("x", ["*"], [])])},
             {"route_config": route_config("inbound|80||", [vhost("y", ["*"], [])])},
             {"route_config": route_config("9080", [vhost("allow_any", ["*"], [
                 {"match": {"prefix": "/"}, "route": {"cluster": "PassthroughCluster"}}])])},
             {"route_config": route_config("80", [vhost("reviews", ["reviews"], [
                 {"match": {"prefix": "/"},
                  "metadata": {"filter_metadata": {"istio": {
                      "config": "/apis/networking.istio.io/v1alpha3/namespaces/bookinfo/"
                                "virtual-service/reviews"}}}},
                 {"match": {"path": "/odd"},
                  "metadata": {"filter_metadata": {"istio": {"config": "/something/else"}}}},
             ])])},
             {"error_state": {"details": "rejected"}},
         ]},
    ]}
    rows = routes_from_config_dump(dump)
    # Dynamic before static; a numeric name does not move past a non-numeric one
    # (Go's sort with istioctl's "both numeric" comparison); passthrough routes
    # are left out, but their virtual host still counts as having routes.
    assert [(r["name"], r["vhostName"], r["match"], r["virtualService"]) for r in rows] == [
        ("15010", "x", "/*", "404"),
        ("inbound|80||", "y", "/*", "404"),
        ("80", "reviews", "/*", "reviews.bookinfo"),
        ("80", "reviews", "/odd", "<unknown>"),
        ("", "backend", "/stats*", ""),
    ]


def test_numeric_names_sort_within_a_run():
    dump = [route_config(n, [vhost("v", ["*"], [{"match": {"prefix": "/"}}])])
            for n in ["9080", "80", "15010", "http.80", "443", "8"]]
    assert [r["name"] for r in routes_from_config_dump(dump)] == [
        "80", "9080", "15010", "http.80", "8", "443"]


def test_camel_case_proto_json():
    dump = {"dynamicRouteConfigs": [{"routeConfig": {"name": "80", "virtualHosts": [
        {"name": "v", "domains": ["a", "a.ns.svc.cluster.local", "a.ns"], "routes": [
            {"match": {"pathSeparatedPrefix": "/get"},
             "metadata": {"filterMetadata": {"istio": {
                 "config": "/apis/networking.istio.io/v1/namespaces/ns/virtual-service/vs"}}}},
            {"match": {"safeRegex": {"regex": "/x"}}},
        ]}]}}]}
    assert routes_from_config_dump(dump) == [
        {"name": "80", "vhostName": "v", "domains": "a, a.ns",
         "match": "PathPrefix:/get", "virtualService": "vs.ns"},
        {"name": "80", "vhostName": "v", "domains": "a, a.ns",
         "match": "regex /x", "virtualService": ""},
    ]


@pytest.mark.parametrize("junk", [None, 3, "", "{not json", [], {}, {"configs": None},
                                  {"configs": [None, 1, "x"]}, [None, [None]],
                                  {"virtual_hosts": None}, {"virtual_hosts": [None, {"routes": 5}]},
                                  {"dynamic_route_configs": [None, {"route_config": 3}]}])
def test_empty_or_malformed_dump(junk):
    rows = routes_from_config_dump(junk)
    assert isinstance(rows, list)
    json.dumps(rows)


# ---------------------------------------------------------------------------
# property tests: nothing raises
# ---------------------------------------------------------------------------

DESCRIBE_PREFIXES = [
    "Pod: ", "   Pod Revision: ", "   Pod Ports: ", "Service: ", "   Port: ", "DestinationRule: ",
    "   Matching subsets: ", "      (Non-matching subsets ", "   No Traffic Policy",
    "   Traffic Policy TLS Mode: ", "   Policies: ", "   Port Level Settings:", "    ",
    "      TLS Mode: ", "VirtualService: ", '   Route to host "', "   Match: ", "RBAC policies: ",
    "--------------------", "Exposed on Ingress Gateway ", "Effective PeerAuthentication:",
    "   Workload mTLS mode: ", "   Port Level mTLS mode:", "      ", "Applied PeerAuthentication:",
    "WARNING: ", "Warning: ", "WARNING POD DOES NOT MATCH ANY SUBSETS.", "Suggestion: ",
    "Ingress Gateway x be applyed all workloads", "9080:", "9080 ", "Error: ", "Skipping ",
    "   Route to non-matching subset ", "   Weight ", "",
]
SUFFIXES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
DESCRIBE_LINES = st.lists(
    st.builds(lambda prefix, suffix: prefix + suffix, st.sampled_from(DESCRIBE_PREFIXES),
              SUFFIXES | st.from_regex(r"[0-9a-z.,:%\"() -]{0,25}", fullmatch=True)),
    max_size=40,
).map("\n".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text() | DESCRIBE_LINES)
def test_parse_describe_never_raises(text):
    parsed = parse_describe(text)
    json.dumps(parsed)
    assert all(w["code"] in WARNING_CODES for w in parsed["warnings"])
    json.dumps(describe_warnings(parsed))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text() | st.lists(st.text(max_size=40), max_size=10).map(
    lambda lines: "\n".join(["NAME   VHOST NAME   DOMAINS   MATCH   VIRTUAL SERVICE"] + lines)))
def test_parse_routes_never_raises(text):
    rows = parse_routes(text)
    assert all(set(row) == set(ROUTE_KEYS) for row in rows)
    assert all(isinstance(v, str) for row in rows for v in row.values())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10)
    | st.sampled_from(["PassthroughCluster",
                       "/apis/networking.istio.io/v1/namespaces/a/virtual-service/b"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["configs", "@type", "dynamic_route_configs", "static_route_configs",
                         "route_config", "virtual_hosts", "name", "domains", "routes", "match",
                         "prefix", "path", "safe_regex", "regex", "metadata", "filter_metadata",
                         "istio", "config", "route", "cluster", "path_separated_prefix"]),
        children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_routes_from_config_dump_never_raises(doc):
    rows = routes_from_config_dump(doc)
    json.dumps(rows)
    assert all(set(row) == set(ROUTE_KEYS) for row in rows)
