"""The checks made of istioctl's parsed output (kubectl_mesh.istioctl_checks), as plain data."""

from __future__ import annotations

from kubectl_mesh.istioctl_checks import Target, checks_from_routes

TARGET = Target(workload="deployment/web", pod="web-1")


def test_one_route_reads_as_english():
    [check] = checks_from_routes(TARGET, [{"name": "80", "virtualService": "web.shop"}])
    assert check.message == "deployment/web: 1 route in the proxy, 1 from VirtualServices"


def test_routes_are_counted_with_those_from_virtual_services():
    rows = [{"name": "80", "virtualService": "web.shop"}, {"name": "InboundPassthroughCluster"}]
    [check] = checks_from_routes(TARGET, rows)
    assert check.result == "pass" and check.message == "deployment/web: 2 routes in the proxy, 1 from VirtualServices"


def test_a_proxy_without_routes_is_a_warning_naming_the_pod():
    [check] = checks_from_routes(TARGET, [])
    assert check.result == "warn" and "proxy of web-1 has no routes" in check.message
