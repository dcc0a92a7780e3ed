"""merge.py: each merge changes only the fields it owns.

Example tests pin the behaviour; property tests (hypothesis) put random
unrelated fields everywhere a user could have them and check that every one
survives every merge, unchanged and in place, and that merging twice is
merging once.
"""

from __future__ import annotations

import copy
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_mesh import merge, traffic
from kubectl_mesh.apply import merge_patch

FQDN = "my-app.my-app.svc.cluster.local"
OWNED_WORDS = {"mtls", "mode", "subsets", "labels", "name", "http", "route", "match", "destination", "host",
               "subset", "weight", "trafficPolicy", "connectionPool", "outlierDetection", "tcp", "annotations",
               "metadata", "spec", "template", "resourceVersion", "apiVersion", "kind", "hosts", "port",
               "gateways", "maxConnections", "h2UpgradePolicy", "http1MaxPendingRequests", "http2MaxRequests",
               "consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent", "mirror", "mirrors"}

keys = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).filter(lambda k: k not in OWNED_WORDS)
scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=6)
extra = st.dictionaries(keys, values, max_size=3)
label_maps = st.dictionaries(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?", fullmatch=True),
                             st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True), max_size=3)
subset_names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def metadata(name="my-app", ns="my-app", *, labels=None, annotations=None, rest=None):
    meta = {"name": name, "namespace": ns, "resourceVersion": "12", **(rest or {})}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return meta


# -- PeerAuthentication ---------------------------------------------------------------------------
def test_new_peer_authentication():
    assert merge.peer_authentication(None, namespace="ns", mode="STRICT") == {
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "ns"}, "spec": {"mtls": {"mode": "STRICT"}}}


def test_existing_peer_authentication_keeps_everything_else():
    existing = {"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
                "metadata": metadata("strict-mtls", labels={"a": "b"}), "spec": {"mtls": {"mode": "DISABLE"}}}
    result = merge.peer_authentication(existing, namespace="my-app", mode="STRICT")
    assert result["apiVersion"] == "security.istio.io/v1beta1"
    assert result["metadata"] == existing["metadata"]
    assert result["spec"] == {"mtls": {"mode": "STRICT"}}
    assert existing["spec"]["mtls"]["mode"] == "DISABLE"  # input untouched


@PROPERTY
@given(meta_extra=extra, labels=label_maps, annotations=st.dictionaries(keys, st.text(max_size=5)),
       spec_extra=extra, mtls_extra=extra, mode=st.sampled_from(["STRICT", "PERMISSIVE"]))
def test_peer_authentication_changes_only_the_mode(meta_extra, labels, annotations, spec_extra, mtls_extra, mode):
    existing = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "status": {"x": 1},
                "metadata": metadata(labels=labels, annotations=annotations, rest=meta_extra),
                "spec": {**spec_extra, "mtls": {**mtls_extra, "mode": "UNSET"}}}
    before = copy.deepcopy(existing)
    result = merge.peer_authentication(existing, namespace="my-app", mode=mode)
    assert existing == before
    assert result["spec"]["mtls"]["mode"] == mode
    result["spec"]["mtls"]["mode"] = "UNSET"
    assert result == before
    assert merge.peer_authentication(merge.peer_authentication(existing, namespace="x", mode=mode),
                                     namespace="x", mode=mode) == merge.peer_authentication(existing, namespace="x",
                                                                                            mode=mode)


# -- DestinationRule subsets ----------------------------------------------------------------------
WANTED = [{"name": "stable", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}]


def test_new_rule_with_subsets():
    assert merge.destination_rule_subsets(None, name="my-app", namespace="ns", host="my-app", wanted=WANTED) == {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "my-app", "namespace": "ns"},
        "spec": {"host": "my-app", "subsets": WANTED}}


def test_subsets_are_added_or_relabelled_in_place():
    existing = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": metadata(),
                "spec": {"host": "my-app", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                         "subsets": [{"name": "canary", "labels": {"version": "v0"},
                                      "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
                                     {"name": "other", "labels": {"x": "y"}}]}}
    result = merge.destination_rule_subsets(existing, name="my-app", namespace="my-app", host="my-app", wanted=WANTED)
    assert result["spec"]["subsets"] == [
        {"name": "canary", "labels": {"version": "v2"}, "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
        {"name": "other", "labels": {"x": "y"}},
        {"name": "stable", "labels": {"version": "v1"}},
    ]
    assert result["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}


@st.composite
def destination_rules(draw):
    others = draw(st.lists(subset_names.filter(lambda n: n not in ("stable", "canary")), max_size=4, unique=True))
    subsets = [{"name": n, "labels": draw(label_maps), **draw(extra)} for n in others]
    for name in draw(st.lists(st.sampled_from(["stable", "canary"]), max_size=2, unique=True)):
        position = draw(st.integers(0, len(subsets)))
        subsets.insert(position, {"name": name, "labels": draw(label_maps), **draw(extra)})
    spec = {"host": draw(st.sampled_from(["my-app", FQDN])), **draw(extra), "subsets": subsets}
    if draw(st.booleans()):
        spec["trafficPolicy"] = draw(extra)
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": metadata(labels=draw(label_maps), annotations=draw(st.dictionaries(keys, st.text(max_size=4))),
                                 rest=draw(extra)),
            "spec": spec}


def _without_owned_subsets(rule):
    rule = copy.deepcopy(rule)
    for item in rule["spec"]["subsets"]:
        if item.get("name") in ("stable", "canary"):
            item.pop("labels", None)
    rule["spec"]["subsets"] = [s for s in rule["spec"]["subsets"]
                               if s.get("name") not in ("stable", "canary") or len(s) > 1]
    return rule


@PROPERTY
@given(rule=destination_rules())
def test_subset_merge_keeps_every_unrelated_field(rule):
    before = copy.deepcopy(rule)
    result = merge.destination_rule_subsets(rule, name="my-app", namespace="my-app", host="my-app", wanted=WANTED)
    assert rule == before
    for want in WANTED:
        assert traffic.subset_named(result, want["name"])["labels"] == want["labels"]
    # other subsets: unchanged, in the same order, before any appended subset
    untouched = [s for s in before["spec"]["subsets"] if s["name"] not in ("stable", "canary")]
    assert [s for s in result["spec"]["subsets"] if s["name"] not in ("stable", "canary")] == untouched
    assert {k: v for k, v in result["spec"].items() if k != "subsets"} == \
        {k: v for k, v in before["spec"].items() if k != "subsets"}
    assert result["metadata"] == before["metadata"]
    # the stable/canary subsets that existed keep their other fields
    for item in before["spec"]["subsets"]:
        if item["name"] in ("stable", "canary"):
            kept = traffic.subset_named(result, item["name"])
            assert {k: v for k, v in kept.items() if k != "labels"} == {k: v for k, v in item.items() if k != "labels"}
    again = merge.destination_rule_subsets(result, name="my-app", namespace="my-app", host="my-app", wanted=WANTED)
    assert again == result


# -- VirtualService weights --------------------------------------------------------------------------
def test_new_virtual_service():
    result = merge.virtual_service_weights(None, name="my-app", namespace="ns", host="my-app",
                                           weights=[("stable", 90), ("canary", 10)],
                                           roles={"stable": "stable", "canary": "canary"})
    assert result == {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "my-app", "namespace": "ns",
                     "annotations": {traffic.CANARY_ANNOTATION: '{"canary":"canary","stable":"stable"}'}},
        "spec": {"hosts": ["my-app"], "http": [{"route": [
            {"destination": {"host": "my-app", "subset": "stable"}, "weight": 90},
            {"destination": {"host": "my-app", "subset": "canary"}, "weight": 10}]}]}}


def test_catch_all_route_is_appended_after_matching_routes():
    existing = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata(),
                "spec": {"hosts": ["my-app"], "http": [
                    {"match": [{"uri": {"prefix": "/admin"}}], "route": [{"destination": {"host": "admin"}}]}]}}
    result = merge.virtual_service_weights(existing, name="my-app", namespace="my-app", host="my-app",
                                           weights=[("stable", 100), ("canary", 0)])
    assert result["spec"]["http"][0] == existing["spec"]["http"][0]
    assert result["spec"]["http"][1] == {"route": [
        {"destination": {"host": "my-app", "subset": "stable"}, "weight": 100},
        {"destination": {"host": "my-app", "subset": "canary"}, "weight": 0}]}
    assert "annotations" not in result["metadata"]  # no roles given: none recorded


def test_other_hosts_destinations_stay_in_place():
    route = {"route": [{"destination": {"host": "legacy.other.svc.cluster.local"}, "weight": 20},
                       {"destination": {"host": FQDN, "subset": "canary", "port": {"number": 8080}},
                        "weight": 30, "headers": {"request": {"set": {"x": "1"}}}},
                       {"destination": {"host": "my-app", "subset": "old"}, "weight": 50}]}
    existing = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata(),
                "spec": {"hosts": ["my-app"], "http": [route]}}
    result = merge.virtual_service_weights(existing, name="my-app", namespace="my-app", host="my-app",
                                           weights=[("stable", 70), ("canary", 30)])
    assert result["spec"]["http"][0]["route"] == [
        {"destination": {"host": "legacy.other.svc.cluster.local"}, "weight": 20},
        {"destination": {"host": FQDN, "subset": "stable", "port": {"number": 8080}}, "weight": 70},
        {"destination": {"host": FQDN, "subset": "canary", "port": {"number": 8080}}, "weight": 30,
         "headers": {"request": {"set": {"x": "1"}}}},
    ]


@st.composite
def virtual_services(draw):
    def destination(host):
        dest = {"host": host, **draw(extra)}
        if draw(st.booleans()):
            dest["subset"] = draw(subset_names)
        item = {"destination": dest, **draw(extra)}
        if draw(st.booleans()):
            item["weight"] = draw(st.integers(0, 100))
        return item

    matching = [{"match": [draw(extra) | {"k": 1}], "route": [destination("my-app")], **draw(extra)}
                for _ in range(draw(st.integers(0, 2)))]
    http = list(matching)
    if draw(st.booleans()):
        hosts = draw(st.lists(st.sampled_from(["my-app", FQDN, "other", "x.y.svc.cluster.local"]), max_size=4))
        http.append({"route": [destination(h) for h in hosts], **draw(extra)})
        http.extend({"route": [destination("my-app")], **draw(extra)} for _ in range(draw(st.integers(0, 1))))
    spec = {"hosts": ["my-app"], **draw(extra), "http": http}
    if draw(st.booleans()):
        spec["tcp"] = [{"route": [destination("my-app")]}]
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": metadata(labels=draw(label_maps), annotations=draw(st.dictionaries(keys, st.text(max_size=4))),
                                 rest=draw(extra)),
            "spec": spec}


@PROPERTY
@given(service_vs=virtual_services(), weight=st.integers(0, 100))
def test_weights_merge_keeps_every_unrelated_field(service_vs, weight):
    before = copy.deepcopy(service_vs)
    roles = {"stable": "stable", "canary": "canary"}
    result = merge.virtual_service_weights(service_vs, name="my-app", namespace="my-app", host="my-app",
                                           weights=[("stable", 100 - weight), ("canary", weight)], roles=roles)
    assert service_vs == before
    # annotations: ours added, every other one kept
    annotations = dict(result["metadata"]["annotations"])
    assert json.loads(annotations.pop(traffic.CANARY_ANNOTATION)) == roles
    assert annotations == before["metadata"].get("annotations", {})
    assert {k: v for k, v in result["metadata"].items() if k != "annotations"} == \
        {k: v for k, v in before["metadata"].items() if k != "annotations"}
    assert {k: v for k, v in result["spec"].items() if k != "http"} == \
        {k: v for k, v in before["spec"].items() if k != "http"}
    index = traffic.catch_all_index(before)
    old_http, new_http = before["spec"]["http"], result["spec"]["http"]
    if index is None:
        assert new_http[:-1] == old_http
        index = len(old_http)
    else:
        assert len(new_http) == len(old_http)
        assert new_http[:index] == old_http[:index] and new_http[index + 1:] == old_http[index + 1:]
        assert {k: v for k, v in new_http[index].items() if k != "route"} == \
            {k: v for k, v in old_http[index].items() if k != "route"}

        def foreign(items):
            return [d for d in items if traffic.destination_fqdn(d["destination"], "my-app") != FQDN]

        assert foreign(new_http[index]["route"]) == foreign(old_http[index]["route"])
    assert traffic.route_weights(new_http[index], FQDN, "my-app") == {"stable": 100 - weight, "canary": weight}
    again = merge.virtual_service_weights(result, name="my-app", namespace="my-app", host="my-app",
                                          weights=[("stable", 100 - weight), ("canary", weight)], roles=roles)
    assert again == result


# -- circuit breaker -----------------------------------------------------------------------------------
def test_breaker_on_a_new_rule_uses_the_guides_values_in_its_order():
    result = merge.destination_rule_breaker(None, name="backend-api", namespace="my-app", host="backend-api",
                                            settings=merge.BREAKER_DEFAULTS)
    assert result["spec"] == {"host": "backend-api", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 100},
                           "http": {"h2UpgradePolicy": "DEFAULT", "http1MaxPendingRequests": 50,
                                    "http2MaxRequests": 100}},
        "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "60s",
                             "maxEjectionPercent": 50}}}


def test_defaults_fill_only_missing_fields():
    existing = {"kind": "DestinationRule", "metadata": metadata(),
                "spec": {"host": "x", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}}}
    result = merge.destination_rule_breaker(existing, name="x", namespace="my-app", host="x",
                                            settings={"interval": "5s"}, defaults=merge.BREAKER_DEFAULTS)
    policy = result["spec"]["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["maxConnections"] == 7
    assert policy["outlierDetection"]["interval"] == "5s"
    assert policy["outlierDetection"]["baseEjectionTime"] == "60s"


@st.composite
def policy_rules(draw):
    policy = {**draw(extra)}
    if draw(st.booleans()):
        policy["connectionPool"] = {"tcp": {**draw(extra)}, "http": {**draw(extra)}, **draw(extra)}
    if draw(st.booleans()):
        policy["outlierDetection"] = {**draw(extra)}
    spec = {"host": "my-app", **draw(extra), "subsets": [{"name": "a", "labels": draw(label_maps),
                                                          "trafficPolicy": draw(extra)}]}
    if policy or draw(st.booleans()):
        spec["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": metadata(labels=draw(label_maps), rest=draw(extra)), "spec": spec}


def _strip_breaker_leaves(rule):
    rule = copy.deepcopy(rule)
    policy = rule["spec"].get("trafficPolicy") or {}
    for path in merge.BREAKER_PATHS.values():
        node = policy
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    for section in ("connectionPool", "outlierDetection"):
        pool = policy.get(section)
        if isinstance(pool, dict):
            for key in ("tcp", "http"):
                if pool.get(key) == {}:
                    pool.pop(key)
            if not pool:
                policy.pop(section)
    if "trafficPolicy" in rule["spec"] and not policy:
        rule["spec"].pop("trafficPolicy")
    return rule


@PROPERTY
@given(rule=policy_rules(), given_keys=st.sets(st.sampled_from(sorted(merge.BREAKER_PATHS))))
def test_breaker_merge_keeps_every_unrelated_field(rule, given_keys):
    before = copy.deepcopy(rule)
    chosen = {k: v for k, v in merge.BREAKER_DEFAULTS.items() if k in given_keys}
    result = merge.destination_rule_breaker(rule, name="my-app", namespace="my-app", host="my-app",
                                            settings=chosen, defaults=merge.BREAKER_DEFAULTS)
    assert rule == before
    for key, path in merge.BREAKER_PATHS.items():
        assert merge.get_path(result["spec"]["trafficPolicy"], path) is not None
        if key in chosen:
            assert merge.get_path(result["spec"]["trafficPolicy"], path) == chosen[key]
    assert _strip_breaker_leaves(result) == _strip_breaker_leaves(before)
    assert merge.destination_rule_breaker(result, name="my-app", namespace="my-app", host="my-app",
                                          settings=chosen, defaults=merge.BREAKER_DEFAULTS) == result


@PROPERTY
@given(rule=policy_rules())
def test_remove_breaker_keeps_everything_but_the_breaker(rule):
    before = copy.deepcopy(rule)
    result = merge.remove_breaker(rule)
    assert rule == before
    policy = result["spec"].get("trafficPolicy")
    assert policy is None or ("connectionPool" not in policy and "outlierDetection" not in policy)
    expected = copy.deepcopy(before)
    if "trafficPolicy" in expected["spec"]:
        for key in ("connectionPool", "outlierDetection"):
            expected["spec"]["trafficPolicy"].pop(key, None)
        if not expected["spec"]["trafficPolicy"]:
            expected["spec"].pop("trafficPolicy")
    assert result == expected
    assert merge.remove_breaker(result) == result


def test_remove_breaker_without_a_rule():
    assert merge.remove_breaker(None) is None


# -- pod template annotations ---------------------------------------------------------------------------
PROXY = {merge.PROXY_CPU: "200m", merge.PROXY_MEMORY: "256Mi"}


def test_annotations_patch_carries_the_resource_version_and_only_changes():
    workload = {"kind": "Deployment", "metadata": {"name": "web", "resourceVersion": "41"},
                "spec": {"template": {"metadata": {"annotations": {merge.PROXY_CPU: "200m", "a": "b"}}}}}
    assert merge.annotations_patch(workload, PROXY) == {
        "spec": {"template": {"metadata": {"annotations": {merge.PROXY_MEMORY: "256Mi"}}}},
        "metadata": {"resourceVersion": "41"}}
    done = merge.template_annotations(workload, PROXY)
    assert merge.annotations_patch(done, PROXY) is None
    assert done["spec"]["template"]["metadata"]["annotations"] == {merge.PROXY_CPU: "200m", "a": "b",
                                                                    merge.PROXY_MEMORY: "256Mi"}


@PROPERTY
@given(spec_extra=extra, template_extra=extra, annotations=st.dictionaries(keys, st.text(max_size=5)),
       labels=label_maps, meta_extra=extra)
def test_template_annotations_keep_everything_else(spec_extra, template_extra, annotations, labels, meta_extra):
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata("web", rest=meta_extra),
                "spec": {**spec_extra, "template": {**template_extra, "metadata": {
                    "labels": labels, "annotations": dict(annotations)}, "spec": {"containers": []}}}}
    before = copy.deepcopy(workload)
    result = merge.template_annotations(workload, PROXY)
    assert workload == before
    got = dict(result["spec"]["template"]["metadata"]["annotations"])
    assert {k: got.pop(k) for k in PROXY} == PROXY
    assert got == annotations
    result["spec"]["template"]["metadata"]["annotations"] = annotations
    assert result == before
    # what the API server makes of the patch is what template_annotations computes
    patch = merge.annotations_patch(before, PROXY)
    applied = merge_patch.apply_merge_patch(before, {k: v for k, v in patch.items() if k != "metadata"})
    assert applied == merge.template_annotations(before, PROXY)


def test_apply_merge_patch_rfc7396():
    assert merge_patch.apply_merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": [1]}, "f": 4}) == {
        "a": 1, "b": {"d": 3, "e": [1]}, "f": 4}
    assert merge_patch.apply_merge_patch([1], {"a": 1}) == {"a": 1}
