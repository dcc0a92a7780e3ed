"""Hosts as istioctl analyze sees them: exportTo visibility (Services, ServiceEntries,
VirtualServices, DestinationRules), destination ports (IST0101 host:port, IST0112),
DestinationRule hosts (IST0174), mesh-gateway host conflicts (IST0109), and
topology labels (IST0173) as Istio's endpoints carry them."""

from __future__ import annotations

import copy

import pytest

from kubectl_mesh import findings
from kubectl_mesh.findings.conflicts import host_matches
from kubectl_mesh.findings.hosts import HostRegistry, scopes_of, to_fqdn
from kubectl_mesh.manifests import Manifests
from kubectl_mesh.manifests import snapshot as manifest_snapshot
from kubectl_mesh.snapshot import Snapshot, endpoint_labels
from tests.helpers import namespace, pod


def run(objects, check=None, offline=True):
    objects = copy.deepcopy(list(objects))
    snap = manifest_snapshot(Manifests(objects)) if offline else Snapshot(objects)
    return [f for f in findings.run(snap) if check is None or f.id == check]


def brief(result):
    return sorted((f.id, f.level, str(f.object)) for f in result)


def service(name, ns, ports=(80,), export_to=None, selector=None):
    meta = {"name": name, "namespace": ns}
    if export_to is not None:
        meta["annotations"] = {"networking.istio.io/exportTo": export_to}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": selector or {"app": name}, "ports": [{"port": p} for p in ports]}}


def entry(name, ns, hosts, export_to=None, ports=()):
    spec = {"hosts": list(hosts), "ports": [{"number": p, "name": f"p{p}"} for p in ports]}
    if export_to is not None:
        spec["exportTo"] = export_to
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def vs(name, ns, host, *, port=None, export_to=None, hosts=None, gateways=None, mirror=None):
    dest = {"host": host} if host is not None else {}
    if port is not None:
        dest["port"] = {"number": port}
    spec = {"hosts": hosts if hosts is not None else [name], "http": [{"route": [{"destination": dest}]}]}
    if mirror:
        spec["http"][0]["mirror"] = mirror
    if export_to is not None:
        spec["exportTo"] = export_to
    if gateways is not None:
        spec["gateways"] = gateways
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def dr(name, ns, host, export_to=None, subsets=None):
    spec = {"host": host}
    if export_to is not None:
        spec["exportTo"] = export_to
    if subsets:
        spec["subsets"] = [{"name": n, "labels": labels} for n, labels in subsets]
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


# -- the registry -------------------------------------------------------------------------
def test_short_names_resolve_in_the_config_namespace_and_wildcards_stay():
    assert to_fqdn("reviews", "shop") == "reviews.shop.svc.cluster.local"
    assert to_fqdn("reviews.other", "shop") == "reviews.other"
    assert to_fqdn("*.example.com", "shop") == "*.example.com"
    assert scopes_of([".", "web"], "shop") == {"shop", "web"}
    assert scopes_of(["*", "."], "shop") == {"*"}


@pytest.mark.parametrize("export_to, seen_from, visible", [
    (None, "anywhere", True),            # no annotation: the mesh default, all namespaces
    ("*", "anywhere", True),
    (".", "shop", True),
    (".", "web", False),
    ("web, ops", "ops", True),           # names, spaces trimmed as Istio does
    ("web,ops", "shop", False),          # not even its own namespace unless "." is listed
    ("~", "shop", False),                # exported nowhere
])
def test_service_export_to_annotation(export_to, seen_from, visible):
    snap = Snapshot([service("api", "shop", export_to=export_to)])
    registry = HostRegistry(snap, ["*"])
    assert (registry.lookup(seen_from, [], "api.shop.svc.cluster.local") is not None) is visible


def test_mesh_default_export_to_applies_to_services_without_the_annotation():
    snap = Snapshot([service("api", "shop")])
    assert HostRegistry(snap, ["."]).lookup("web", [], "api.shop.svc.cluster.local") is None
    assert HostRegistry(snap, ["."]).lookup("shop", [], "api") is not None


def test_a_star_host_kept_to_its_namespace_does_not_make_every_host_exist_elsewhere():
    snap = Snapshot([entry("all", "sandbox", ["*"], export_to=["."])])
    registry = HostRegistry(snap, ["*"])
    assert registry.lookup("sandbox", [], "anything.example.com") is not None
    assert registry.lookup("shop", [], "anything.example.com") is None
    assert registry.matching_elsewhere("anything.example.com") == []


def test_a_virtual_service_export_to_decides_where_its_hosts_are_looked_up():
    snap = Snapshot([service("api", "shop", export_to="web")])
    registry = HostRegistry(snap, ["*"])
    assert registry.lookup("shop", ["web"], "api.shop.svc.cluster.local") is not None
    assert registry.lookup("shop", [], "api.shop.svc.cluster.local") is None
    assert registry.lookup("shop", ["."], "api.shop.svc.cluster.local") is None


# -- destinations -------------------------------------------------------------------------
def test_a_host_that_exists_but_is_not_exported_to_the_virtual_service_is_not_found():
    objs = [service("api", "shop", export_to="."), vs("caller", "web", "api.shop.svc.cluster.local")]
    result = run(objs, "MESH-TRF-004")
    assert brief(result) == [("MESH-TRF-004", "error", "VirtualService web/caller")]
    assert "Service shop/api declares it but exports it to namespace shop, not to namespace web" in result[0].message
    # exported to the VirtualService's namespace: fine
    assert run([service("api", "shop", export_to="shop,web"), vs("caller", "web", "api.shop.svc.cluster.local")],
               "MESH-TRF-004") == []


def test_service_entry_export_to_and_wildcards():
    objs = [entry("ext", "ops", ["api.example.com"], export_to=["."]),
            entry("wild", "ops", ["*.example.org"], export_to=["web"]),
            vs("a", "web", "api.example.com"), vs("b", "web", "x.example.org"), vs("c", "ops", "x.example.org"),
            namespace("web"), namespace("ops")]
    assert brief(run(objs, "MESH-TRF-004")) == [("MESH-TRF-004", "error", "VirtualService ops/c"),
                                                ("MESH-TRF-004", "error", "VirtualService web/a")]


def test_route_to_a_port_the_service_does_not_expose_and_a_mirror_port():
    objs = [service("api", "shop", ports=(8080,)), vs("bad", "shop", "api", port=9090),
            vs("ok", "shop", "api", port=8080),
            vs("mirror", "shop", "api", port=8080, mirror={"host": "api", "port": {"number": 1}})]
    result = run(objs, "MESH-TRF-004")
    assert brief(result) == [("MESH-TRF-004", "error", "VirtualService shop/bad"),
                             ("MESH-TRF-004", "error", "VirtualService shop/mirror")]
    assert "routes to api port 9090, but Service shop/api exposes ports 8080" in result[0].message
    assert result[0].details["where"] == ["http[0].route[0]"]


def test_a_destination_without_a_host_is_reported_not_skipped():
    result = run([service("api", "shop"), vs("empty", "shop", None)], "MESH-TRF-004")
    assert brief(result) == [("MESH-TRF-004", "error", "VirtualService shop/empty")]
    assert "has a destination with no host" in result[0].message


def test_port_selector_required_for_a_host_with_several_ports():
    objs = [service("api", "shop", ports=(80, 443)), vs("noport", "shop", "api"), vs("port", "shop", "api", port=443),
            service("one", "shop", ports=(80,)), vs("single", "shop", "one")]
    result = run(objs, "MESH-TRF-007")
    assert brief(result) == [("MESH-TRF-007", "error", "VirtualService shop/noport")]
    assert result[0].istio_code == "IST0112"
    assert "exposes several ports (80, 443)" in result[0].message


def test_one_finding_per_destination_as_istioctl_reports_them():
    route = [{"destination": {"host": "gone"}, "weight": 50}, {"destination": {"host": "gone"}, "weight": 50}]
    two = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "two",
           "namespace": "shop"}, "spec": {"hosts": ["x"], "http": [{"route": route}]}}
    assert len(run([service("api", "shop"), two], "MESH-TRF-004")) == 2


# -- DestinationRule hosts (IST0174) --------------------------------------------------------
def test_destination_rule_for_a_host_that_matches_nothing():
    objs = [service("api", "shop"), dr("typo", "shop", "apii"), dr("ok", "shop", "api"),
            dr("hidden", "web", "api.shop.svc.cluster.local"), namespace("web")]
    objs[0]["metadata"]["annotations"] = {"networking.istio.io/exportTo": "."}
    result = run(objs, "MESH-TRF-008")
    assert brief(result) == [("MESH-TRF-008", "warning", "DestinationRule shop/typo"),
                             ("MESH-TRF-008", "warning", "DestinationRule web/hidden")]
    assert all(f.istio_code == "IST0174" for f in result)
    # the rule's own exportTo decides where it looks the host up, as istioctl does
    assert run([service("api", "shop", export_to="web"), dr("r", "shop", "api", export_to=["web"])],
               "MESH-TRF-008") == []


def test_destination_rule_host_outside_the_manifests_is_only_info():
    result = run([dr("r", "elsewhere", "api")], "MESH-TRF-008")
    assert brief(result) == [("MESH-TRF-008", "info", "DestinationRule elsewhere/r")]
    assert "unconfirmed" in result[0].message


def test_wildcard_rule_host_covering_services_is_info_naming_them():
    objs = [service("api", "shop"), dr("all", "shop", "*.shop.svc.cluster.local")]
    result = run(objs, "MESH-TRF-008")
    assert brief(result) == [("MESH-TRF-008", "info", "DestinationRule shop/all")]
    assert "istioctl analyze reports IST0174 (warning)" in result[0].message and "shop/api" in result[0].message


# -- mesh gateway host conflicts (IST0109) -----------------------------------------------------
def test_host_matches_as_istio_host_names_do():
    assert host_matches("a.example.com", "a.example.com")
    assert host_matches("*.example.com", "a.example.com") and host_matches("a.example.com", "*.example.com")
    assert host_matches("*.productpage.d", "*.d") and host_matches("*", "anything")
    assert not host_matches("a.example.com", "b.example.com")


def test_two_virtual_services_for_one_host_on_the_mesh_gateway():
    objs = [vs("web", "shop", "web", hosts=["web"]), vs("web-canary", "shop", "web", hosts=["web"]),
            vs("edge", "shop", "web", hosts=["web"], gateways=["shop-gateway"]), service("web", "shop")]
    result = run(objs, "MESH-TRF-009")
    assert brief(result) == [("MESH-TRF-009", "error", "VirtualService shop/web"),
                             ("MESH-TRF-009", "error", "VirtualService shop/web-canary")]
    assert "shop/web, shop/web-canary" in result[0].message


def test_export_to_separates_and_star_export_joins():
    local_a = vs("a", "team1", "r", hosts=["r.team1.svc.cluster.local"], export_to=["."])
    local_b = vs("b", "team2", "r", hosts=["r.team1.svc.cluster.local"], export_to=["."])
    assert run([local_a, local_b], "MESH-TRF-009") == []
    everywhere = vs("c", "team3", "r", hosts=["r.team1.svc.cluster.local"], export_to=["*"])
    assert brief(run([local_a, everywhere], "MESH-TRF-009")) == [
        ("MESH-TRF-009", "error", "VirtualService team1/a"), ("MESH-TRF-009", "error", "VirtualService team3/c")]


# -- topology labels (IST0173) ------------------------------------------------------------------
def test_endpoint_labels_take_the_node_locality_but_never_an_empty_one():
    node = {"topology.kubernetes.io/region": "", "topology.kubernetes.io/zone": "z1",
            "failure-domain.beta.kubernetes.io/region": ""}
    labels = endpoint_labels({"app": "web"}, "n1", node)
    assert labels == {"app": "web", "topology.kubernetes.io/zone": "z1", "kubernetes.io/hostname": "n1"}
    assert endpoint_labels({}, "n1", {"failure-domain.beta.kubernetes.io/region": "r"})[
        "topology.kubernetes.io/region"] == "r"


def test_empty_topology_label_subset_selects_nothing_in_findings_and_select_pods():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1",
            "labels": {"topology.kubernetes.io/region": ""}}}
    web = pod("web-1", "shop", labels={"app": "web"}, node="n1", sidecar="container")
    rule = dr("web", "shop", "web", subsets=[("empty", {"topology.kubernetes.io/region": ""})])
    result = run([node, web, service("web", "shop"), rule], "MESH-TRF-003", offline=False)
    assert brief(result) == [("MESH-TRF-003", "warning", "DestinationRule shop/web")]
    assert "never matches" in result[0].message and "istioctl analyze rates this an error" in result[0].message
    snap = Snapshot([node, web])
    assert snap.select_pods("shop", {"topology.kubernetes.io/region": ""}, with_node_labels=True) == []
    assert snap.select_pods("shop", {"kubernetes.io/hostname": "n1"}, with_node_labels=True) == [web]
