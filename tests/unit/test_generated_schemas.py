"""Every Istio object the plugin generates validates against Istio's own CRD schemas.

The schemas are the `openAPIV3Schema` of each CRD version in
tests/data/crds/crd-all.gen.yaml (Istio project, Apache-2.0, release 1.32
development line). Checked with jsonschema, made stricter than the API
server's pruning: an object with properties and no
x-kubernetes-preserve-unknown-fields admits no other field, so a misspelt
field fails here instead of being silently dropped. The CEL rules
(x-kubernetes-validations) met on the way are evaluated for the rules that
concern the fields we write; an unknown rule on a written field fails the
test, so that a new rule is noticed.

Objects come from the pure merges and from the commands themselves: what
`mtls`, `canary` and `circuit-breaker` send to `kubectl create -f -`, and the objects
their `kubectl patch --type merge` bodies make of what they were applied to.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from kubectl_mesh import errors, merge, validate
from tests.commands.istio_objects import (
    NS,
    Writes,
    dr,
    register_patch,
    register_service_read,
    register_write,
    service,
    subset,
    version_pods,
    vs,
    weighted,
)
from tests.helpers import deployment_with_pods, kube_list, namespace

CRDS = Path(__file__).resolve().parents[1] / "data" / "crds" / "crd-all.gen.yaml"
GROUP_OF = {"DestinationRule": "networking.istio.io", "VirtualService": "networking.istio.io",
            "PeerAuthentication": "security.istio.io"}


@functools.cache
def schemas() -> dict[tuple[str, str], dict]:
    """(kind, apiVersion) -> openAPIV3Schema, for every served version."""
    found = {}
    for doc in yaml.safe_load_all(CRDS.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind, group = doc["spec"]["names"]["kind"], doc["spec"]["group"]
        for version in doc["spec"]["versions"]:
            if version.get("served"):
                found[(kind, f"{group}/{version['name']}")] = version["schema"]["openAPIV3Schema"]
    return found


def strict(schema):
    """Closed objects: no field beyond the declared properties (unless unknown fields are preserved)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


# -- the CEL rules that concern what we write ---------------------------------------------------------
def _duration_at_least_1ms(value, _parent):
    try:
        validate.duration(value, minimum_ms=1)
    except errors.UsageError:
        return False
    return True


def _port_level_needs_selector(value, _parent):
    if "portLevelMtls" not in value:
        return True
    return bool(((value.get("selector") or {}).get("matchLabels")) or {})


RULES = {
    "duration(self) >= duration('1ms')": _duration_at_least_1ms,
    "0 < self && self <= 65535": lambda value, _p: 0 < value <= 65535,
}
RULE_PREFIXES = {
    "has(self.portLevelMtls) ?": _port_level_needs_selector,
}


def cel_errors(schema, value, path="") -> list[str]:
    """Evaluate the known x-kubernetes-validations rules along the instance; unknown ones are errors."""
    problems = []
    if not isinstance(schema, dict):
        return problems
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule["rule"]
        check = RULES.get(text) or next((f for p, f in RULE_PREFIXES.items() if text.startswith(p)), None)
        if check is None:
            problems.append(f"{path}: unknown rule {text!r}")
        elif not check(value, None):
            problems.append(f"{path}: {rule.get('message', text)}")
    if isinstance(value, dict):
        for key, item in value.items():
            sub = (schema.get("properties") or {}).get(key) or (
                schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None)
            if sub is not None:
                problems += cel_errors(sub, item, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += cel_errors(schema["items"], item, f"{path}[{index}]")
    return problems


def schema_errors(obj: dict) -> list[str]:
    key = (obj.get("kind"), obj.get("apiVersion"))
    if key not in schemas():
        return [f"no served CRD version for {key}"]
    schema = schemas()[key]
    problems = []
    metadata = obj.get("metadata") or {}
    if not metadata.get("name") or not metadata.get("namespace"):
        problems.append("metadata.name and metadata.namespace are required")
    for field in ("labels", "annotations"):
        if any(not isinstance(v, str) for v in (metadata.get(field) or {}).values()):
            problems.append(f"metadata.{field} values must be strings")
    spec_schema = strict(schema["properties"]["spec"])
    validator = jsonschema.Draft7Validator(spec_schema)
    problems += [f"spec.{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj.get("spec", {}))]
    problems += cel_errors(schema["properties"]["spec"], obj.get("spec", {}), "spec")
    return problems


def assert_valid(obj: dict) -> None:
    assert obj["apiVersion"].split("/")[0] == GROUP_OF[obj["kind"]]
    assert schema_errors(obj) == [], json.dumps(obj, indent=1)


# -- the check itself catches mistakes ----------------------------------------------------------------
@pytest.mark.parametrize("mutate,needle", [
    (lambda o: o["spec"]["http"][0]["route"][0].update(weight="ten"), "'ten' is not of type 'integer'"),
    (lambda o: o["spec"]["http"][0]["route"][0]["destination"].update(subst="x"), "Additional properties"),
    (lambda o: o["spec"]["http"][0]["route"][0].pop("destination"), "'destination' is a required property"),
    (lambda o: o["spec"]["http"][0]["route"][0]["destination"].update(port={"number": -1}), "minimum"),
])
def test_the_check_rejects_broken_virtual_services(mutate, needle):
    obj = merge.virtual_service_weights(None, name="a", namespace="n", host="a", weights=[("s", 100)])
    assert_valid(obj)
    broken = copy.deepcopy(obj)
    mutate(broken)
    assert any(needle in problem for problem in schema_errors(broken)), schema_errors(broken)


@pytest.mark.parametrize("mutate,needle", [
    (lambda o: o["spec"]["trafficPolicy"]["outlierDetection"].update(interval="0s"), "greater than 1ms"),
    (lambda o: o["spec"]["trafficPolicy"]["connectionPool"]["http"].update(h2UpgradePolicy="SOMETIMES"),
     "is not one of"),
    (lambda o: o["spec"].pop("host"), "'host' is a required property"),
    (lambda o: o["spec"]["trafficPolicy"]["outlierDetection"].update(consecutive5xxErrors=-1), "minimum"),
])
def test_the_check_rejects_broken_destination_rules(mutate, needle):
    obj = merge.destination_rule_breaker(None, name="a", namespace="n", host="a", settings=merge.BREAKER_DEFAULTS)
    assert_valid(obj)
    broken = copy.deepcopy(obj)
    mutate(broken)
    assert any(needle in problem for problem in schema_errors(broken)), schema_errors(broken)


def test_the_check_rejects_port_level_mtls_without_selector_and_bad_modes():
    obj = merge.peer_authentication(None, namespace="n", mode="STRICT")
    assert_valid(obj)
    broken = copy.deepcopy(obj)
    broken["spec"]["portLevelMtls"] = {"8080": {"mode": "PERMISSIVE"}}
    assert "spec: portLevelMtls requires selector" in schema_errors(broken)
    broken = merge.peer_authentication(None, namespace="n", mode="SOMETIMES")
    assert any("is not one of" in p for p in schema_errors(broken))


# -- the merges -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
def test_peer_authentication(mode):
    assert_valid(merge.peer_authentication(None, namespace="my-app", mode=mode))
    existing = {"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
                "metadata": {"name": "strict-mtls", "namespace": "my-app"},
                "spec": {"mtls": {"mode": "DISABLE"}}}
    assert_valid(merge.peer_authentication(existing, namespace="my-app", mode=mode))


def test_subsets_and_weights():
    wanted = [{"name": "stable", "labels": {"version": "v1"}}, {"name": "canary-v1-2", "labels": {"version": "v1.2"}}]
    assert_valid(merge.destination_rule_subsets(None, name="my-app", namespace="my-app", host="my-app", wanted=wanted))
    roles = {"stable": "stable", "canary": "canary-v1-2"}
    for weight in (0, 10, 100):
        assert_valid(merge.virtual_service_weights(None, name="my-app", namespace="my-app", host="my-app",
                                                   weights=[("stable", 100 - weight), ("canary-v1-2", weight)],
                                                   roles=roles))
    existing = vs(http=[{"match": [{"headers": {"x": {"exact": "1"}}}],
                         "route": [{"destination": {"host": "my-app", "subset": "stable"}}]},
                        {"route": [{"destination": {"host": "my-app", "port": {"number": 8080}}}],
                         "retries": {"attempts": 3, "perTryTimeout": "2s"}, "timeout": "10s"}])
    assert_valid(merge.virtual_service_weights(existing, name="my-app", namespace="my-app", host="my-app",
                                               weights=[("stable", 90), ("canary", 10)], roles=roles))


@pytest.mark.parametrize("settings", [
    merge.BREAKER_DEFAULTS,
    {**merge.BREAKER_DEFAULTS, "interval": "1m30s", "base_ejection_time": "500ms", "h2_upgrade_policy": "UPGRADE",
     "consecutive_5xx": 2**32 - 1, "max_connections": 2**31 - 1, "max_ejection_percent": 0},
    {"interval": "1ms"},
])
def test_circuit_breakers(settings):
    obj = merge.destination_rule_breaker(None, name="backend-api", namespace="my-app", host="backend-api",
                                         settings=settings)
    assert_valid(obj)
    assert_valid(merge.remove_breaker(obj))
    with_tls = dr(subsets=[subset("stable", "v1")], policy={"tls": {"mode": "ISTIO_MUTUAL"}})
    assert_valid(merge.destination_rule_breaker(with_tls, name="my-app", namespace="my-app", host="my-app",
                                                settings=settings))


def test_the_guides_own_examples_validate_once_written_as_v1():
    """The guide's manifests (v1beta1) as the plugin writes them (v1)."""
    guide_dr = merge.destination_rule_subsets(None, name="my-app", namespace="my-app", host="my-app", wanted=[
        {"name": "stable", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}])
    assert_valid(guide_dr)
    for version in ("v1beta1", "v1alpha3"):
        assert schema_errors({**guide_dr, "apiVersion": f"networking.istio.io/{version}"}) == []


# -- what the commands send -------------------------------------------------------------------------
def test_what_canary_and_circuit_breaker_send(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1", 1), *version_pods("v2", 1)])
    writes = Writes()
    for _ in range(2):
        register_write(fp, writes, "create")
    assert mesh_cli("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", "-n", NS).exit_code == 0
    existing = [dr(subsets=[subset("stable", "v1"), subset("canary", "v2")]),
                vs(http=[weighted(("stable", 90), ("canary", 10))])]
    register_service_read(fp, [service(), *version_pods("v1", 1), *version_pods("v2", 1), *existing], occurrences=3)
    register_patch(fp, writes, existing[1])
    register_patch(fp, writes, existing[0])
    register_patch(fp, writes, existing[1])
    assert mesh_cli("canary", "promote", "my-app", "--full", "-n", NS).exit_code == 0
    assert mesh_cli("circuit-breaker", "my-app", "-n", NS, "--interval", "10s").exit_code == 0
    assert mesh_cli("canary", "rollback", "my-app", "-n", NS).exit_code == 0
    assert writes.kinds() == ["DestinationRule", "VirtualService", "VirtualService", "DestinationRule",
                              "VirtualService"]
    for obj in writes.sent:
        assert_valid(obj)


def test_what_mtls_sends(fp, mesh_cli):
    objects = [namespace(NS, {"istio-injection": "enabled"}), *deployment_with_pods("web", sidecar="container")]
    fp.register(["kubectl", "get", fp.any()], stdout=kube_list(*objects), occurrences=4)
    writes = Writes()
    for _ in range(2):
        register_write(fp, writes, "create")
    assert mesh_cli("mtls", NS, "permissive").exit_code == 0
    assert mesh_cli("mtls", NS, "strict").exit_code == 0
    assert [o["spec"]["mtls"]["mode"] for o in writes.sent] == ["PERMISSIVE", "STRICT"]
    for obj in writes.sent:
        assert_valid(obj)


def test_the_sidecar_annotations_are_strings():
    patch = merge.annotations_patch({"metadata": {"resourceVersion": "1"}},
                                    {merge.PROXY_CPU: validate.quantity("1"), merge.PROXY_MEMORY: "1Gi"})
    assert all(isinstance(v, str) for v in patch["spec"]["template"]["metadata"]["annotations"].values())


def test_subset_names_the_plugin_makes_up_are_dns_labels():
    from kubectl_mesh.commands.canary import subset_name_for

    for version in ("v1.2.0", "V2_RC", "x" * 80, "--"):
        name = subset_name_for(version, "canary", "canary")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
