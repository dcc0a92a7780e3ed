"""traffic.py: DestinationRules, subsets, VirtualService routes and canary roles, as Istio reads them."""

from __future__ import annotations

import json

from kubectl_mesh import traffic
from kubectl_mesh.snapshot import Snapshot
from tests.helpers import pod

FQDN = "my-app.my-app.svc.cluster.local"


def service(name="my-app", ns="my-app", selector=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector if selector is not None else {"app": name}}}


def dr(name, host, ns="my-app", *, created="2024-01-01T00:00:00Z", subsets=None, policy=None, **spec):
    body = {"host": host, **spec}
    if subsets is not None:
        body["subsets"] = subsets
    if policy is not None:
        body["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": body}


def vs(name, hosts, http, ns="my-app", *, created="2024-01-01T00:00:00Z", annotations=None, **spec):
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created,
                         "annotations": annotations or {}},
            "spec": {"hosts": hosts, "http": http, **spec}}


def weighted(*pairs, host="my-app"):
    return {"route": [{"destination": {"host": host, "subset": s}, "weight": w} for s, w in pairs]}


class TestDestinationRules:
    def test_short_and_long_hosts_resolve_in_the_rules_namespace(self):
        snap = Snapshot([
            dr("short", "my-app"),
            dr("long", "my-app.my-app.svc.cluster.local", created="2024-02-01T00:00:00Z"),
            dr("partial", "my-app.my-app"),  # has a dot: taken as written, not this host
            dr("elsewhere", "my-app", ns="other"),  # resolves to my-app.other
            dr("explicit", FQDN, ns="other", created="2023-01-01T00:00:00Z"),
        ])
        assert [d["metadata"]["name"] for d in traffic.destination_rules_for(snap, FQDN, "my-app")] == [
            "short", "long"]
        everywhere = traffic.destination_rules_for(snap, FQDN)
        assert [d["metadata"]["name"] for d in everywhere] == ["explicit", "short", "long"]

    def test_oldest_first_then_name(self):
        snap = Snapshot([
            dr("b", "my-app", created="2024-01-01T00:00:00Z"),
            dr("a", "my-app", created="2024-01-01T00:00:00Z"),
            dr("old", "my-app", created="2023-01-01T00:00:00Z"),
        ])
        assert [d["metadata"]["name"] for d in traffic.destination_rules_for(snap, FQDN, "my-app")] == [
            "old", "a", "b"]

    def test_workload_scoped_rules_are_not_merged(self):
        scoped = dr("scoped", "my-app", workloadSelector={"matchLabels": {"app": "client"}})
        snap = Snapshot([scoped, dr("plain", "my-app")])
        assert [d["metadata"]["name"] for d in traffic.destination_rules_for(snap, FQDN, "my-app")] == ["plain"]
        assert len(traffic.destination_rules_for(snap, FQDN, "my-app", include_workload_scoped=True)) == 2

    def test_merged_subsets_first_name_wins(self):
        first = dr("a", "my-app", subsets=[{"name": "stable", "labels": {"version": "v1"}}])
        second = dr("b", "my-app", subsets=[{"name": "stable", "labels": {"version": "v9"}},
                                            {"name": "canary", "labels": {"version": "v2"}}])
        merged = traffic.merged_subsets([first, second])
        assert merged == [{"name": "stable", "labels": {"version": "v1"}},
                          {"name": "canary", "labels": {"version": "v2"}}]
        assert traffic.subset_named([first, second], "stable")["labels"] == {"version": "v1"}
        assert traffic.subset_named(first, "canary") is None
        assert [s["name"] for s in traffic.subsets_with_labels([first, second], {"version": "v2"})] == ["canary"]
        assert traffic.subsets_with_labels(first, {"version": "v1", "x": "y"}) == []

    def test_first_rule_with_a_policy_gives_the_policy(self):
        policy = {"connectionPool": {"tcp": {"maxConnections": 7}}, "tls": {"mode": "ISTIO_MUTUAL"}}
        rules = [dr("a", "my-app"), dr("b", "my-app", policy=policy), dr("c", "my-app", policy={"tls": {}})]
        source, found = traffic.effective_traffic_policy(rules)
        assert source["metadata"]["name"] == "b" and found is policy
        assert traffic.circuit_breaker(source) == {"connectionPool": {"tcp": {"maxConnections": 7}}}
        assert traffic.circuit_breaker(policy) == {"connectionPool": {"tcp": {"maxConnections": 7}}}
        assert traffic.circuit_breaker(rules[0]) == {}
        assert traffic.circuit_breaker(None) == {}

    def test_breaker_view_names_ignored_policies(self):
        cb = {"outlierDetection": {"consecutive5xxErrors": 5}}
        snap = Snapshot([dr("a", "my-app", policy=cb),
                         dr("b", "my-app", created="2025-01-01T00:00:00Z", policy=cb)])
        view = traffic.breaker_view(snap, FQDN, "my-app")
        assert view == {"host": FQDN, "destinationRules": ["a", "b"], "source": "a", "settings": cb,
                        "ignored": ["b"]}


class TestVirtualServices:
    def test_hosts_resolved_and_gateway_only_services_left_out(self):
        snap = Snapshot([
            vs("mesh", ["my-app"], []),
            vs("gw", ["my-app"], [], gateways=["ingress"]),
            vs("both", [FQDN], [], gateways=["ingress", "mesh"], created="2025-01-01T00:00:00Z"),
            vs("other", ["web"], []),
        ])
        assert [v["metadata"]["name"] for v in traffic.virtual_services_for(snap, FQDN, "my-app")] == [
            "mesh", "both"]
        assert len(traffic.virtual_services_for(snap, FQDN, "my-app", mesh_only=False)) == 3

    def test_catch_all_route_and_weights(self):
        service_vs = vs("v", ["my-app"], [
            {"match": [{"headers": {"x-test": {"exact": "1"}}}], "route": [{"destination": {"host": "my-app", "subset": "canary"}}]},
            weighted(("stable", 90), ("canary", 10)),
            weighted(("never", 100)),
        ])
        assert traffic.catch_all_index(service_vs) == 1
        route = service_vs["spec"]["http"][1]
        assert traffic.route_weights(route, FQDN, "my-app") == {"stable": 90, "canary": 10}
        assert traffic.route_weights(service_vs["spec"]["http"][0], FQDN, "my-app") == {"canary": 100}
        assert traffic.routed_subsets(service_vs, FQDN) == {"canary": 100, "stable": 90, "never": 100}

    def test_no_catch_all(self):
        assert traffic.catch_all_index(vs("v", ["my-app"], [{"match": [{"uri": {"prefix": "/"}}], "route": []}])) is None

    def test_traffic_shares_normalise_weights(self):
        route = {"route": [
            {"destination": {"host": "my-app", "subset": "a"}, "weight": 1},
            {"destination": {"host": "other.ns.svc.cluster.local"}, "weight": 3},
        ]}
        shares = traffic.traffic_shares(route, "my-app")
        assert [s["percent"] for s in shares] == [25.0, 75.0]
        assert shares[1]["host"] == "other.ns.svc.cluster.local"

    def test_mirrors_count_as_routed(self):
        service_vs = vs("v", ["my-app"], [{
            "route": [{"destination": {"host": "my-app", "subset": "stable"}}],
            "mirror": {"host": "my-app", "subset": "shadow"},
            "mirrors": [{"destination": {"host": "my-app", "subset": "shadow2"}}],
        }])
        assert traffic.routed_subsets(service_vs, FQDN) == {"stable": 100, "shadow": 100, "shadow2": 100}


class TestCanaryRoles:
    def test_from_annotation(self):
        annotated = vs("v", ["my-app"], [weighted(("v1", 80), ("v2", 20))],
                       annotations={traffic.CANARY_ANNOTATION: json.dumps({"stable": "v1", "canary": "v2"})})
        assert traffic.canary_roles(annotated, FQDN) == {"stable": "v1", "canary": "v2"}

    def test_from_the_guides_names(self):
        guide = vs("v", ["my-app"], [weighted(("stable", 90), ("canary", 10))])
        assert traffic.canary_roles(guide, FQDN) == {"stable": "stable", "canary": "canary"}

    def test_none_when_unknown_or_garbled(self):
        assert traffic.canary_roles(vs("v", ["my-app"], [weighted(("a", 50), ("b", 50))]), FQDN) is None
        garbled = vs("v", ["my-app"], [weighted(("a", 50))], annotations={traffic.CANARY_ANNOTATION: "{"})
        assert traffic.canary_roles(garbled, FQDN) is None
        assert traffic.canary_roles(None) is None

    def test_canary_view_counts_ready_pods_per_subset(self):
        objects = [
            service(),
            dr("my-app", "my-app", subsets=[{"name": "stable", "labels": {"version": "v1"}},
                                            {"name": "canary", "labels": {"version": "v2"}},
                                            {"name": "zone", "labels": {"topology.kubernetes.io/zone": "z1"}}]),
            vs("my-app", ["my-app"], [weighted(("stable", 90), ("canary", 10))]),
            pod("s1", labels={"app": "my-app", "version": "v1"}),
            pod("s2", labels={"app": "my-app", "version": "v1"}, ready=False),
            pod("c1", labels={"app": "my-app", "version": "v2"}),
            pod("x", labels={"app": "other", "version": "v2"}),  # not behind the Service
            {"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "z1"}}},
        ]
        view = traffic.canary_view(Snapshot(objects), objects[0])
        assert view.active and view.weight_of("stable") == 90 and view.weight_of("canary") == 10
        doc = view.as_dict()
        assert doc["stable"] == {"subset": "stable", "weight": 90}
        assert doc["subsets"][0] == {"name": "stable", "labels": {"version": "v1"},
                                     "pods": {"ready": 1, "total": 2}, "weight": 90, "role": "stable"}
        assert doc["subsets"][1]["pods"] == {"ready": 1, "total": 1}
        assert doc["subsets"][2]["pods"] == {"ready": 2, "total": 3}  # zone from the node
        assert doc["destinationRules"] == ["my-app"] and doc["virtualServices"] == ["my-app"]

    def test_canary_view_without_objects(self):
        view = traffic.canary_view(Snapshot([service()]), service())
        assert not view.active and view.weight_of("canary") is None
        assert view.as_dict()["subsets"] == []


def test_subset_pods_skips_finished_and_terminating():
    done = pod("done", labels={"app": "my-app", "version": "v1"})
    done["status"]["phase"] = "Succeeded"
    going = pod("going", labels={"app": "my-app", "version": "v1"})
    going["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    live = pod("live", labels={"app": "my-app", "version": "v1"})
    snap = Snapshot([service(), done, going, live])
    pods = traffic.subset_pods(snap, service(), {"version": "v1"})
    assert [p["metadata"]["name"] for p in pods] == ["live"]
    assert traffic.subset_pods(snap, service(selector={}), {}) == []
