"""circuit-breaker: merged into the host's one DestinationRule; remove; status; exit codes; JSON."""

from __future__ import annotations

import json

import pytest

from tests.commands.istio_objects import (
    CONFLICT,
    CREATE,
    DR_RESOURCE,
    NS,
    SERVICE_READ,
    Writes,
    calls,
    dr,
    patch_args,
    register_patch,
    register_service_read,
    register_write,
    service,
    subset,
    version_pods,
)
from tests.helpers import api_calls, register_kubectl

GUIDE_POLICY = {
    "connectionPool": {
        "tcp": {"maxConnections": 100},
        "http": {"h2UpgradePolicy": "DEFAULT", "http1MaxPendingRequests": 50, "http2MaxRequests": 100},
    },
    "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "60s",
                         "maxEjectionPercent": 50},
}
TLS = {"mode": "ISTIO_MUTUAL", "sni": "my-app.example"}
LB = {"simple": "LEAST_REQUEST"}


def test_new_rule_with_the_guides_values(fp, mesh_cli):
    register_service_read(fp, [service(), *version_pods("v1")])
    writes = Writes()
    register_write(fp, writes, "create")
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *SERVICE_READ], ["kubectl", *CREATE]]
    assert writes.sent == [{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                            "metadata": {"name": "my-app", "namespace": NS},
                            "spec": {"host": "my-app", "trafficPolicy": GUIDE_POLICY}}]
    # the guide's order of fields
    assert list(writes.sent[0]["spec"]["trafficPolicy"]["connectionPool"]["http"]) == [
        "h2UpgradePolicy", "http1MaxPendingRequests", "http2MaxRequests"]
    doc = result.json()
    assert doc["success"] is True
    breaker = doc["circuitBreaker"]  # as the command leaves it
    assert {k: breaker[k] for k in ("service", "namespace", "host", "destinationRules", "source", "settings")} == {
        "service": "my-app", "namespace": NS, "host": "my-app.my-app.svc.cluster.local",
        "destinationRules": ["my-app"], "source": "my-app", "settings": GUIDE_POLICY}
    assert breaker["limits"]["maxConnections"] == 100
    assert doc["requested"] == {"circuitBreaker": {"settings": GUIDE_POLICY}}
    assert [(s["action"], s["target"], s["status"]) for s in doc["plan"]] == [
        ("circuit-breaker", "destinationrule/my-app", "applied")]


def test_merged_into_the_canary_rule_keeping_tls_lb_subsets(fp, mesh_cli):
    rule = dr("canary-rule", "my-app.my-app.svc.cluster.local",
              subsets=[subset("stable", "v1"), subset("canary", "v2", trafficPolicy={"loadBalancer": LB})],
              policy={"tls": TLS, "loadBalancer": LB,
                      "connectionPool": {"tcp": {"connectTimeout": "2s"}},
                      "portLevelSettings": [{"port": {"number": 80}, "loadBalancer": LB}]})
    register_service_read(fp, [service(), rule])
    writes = Writes()
    register_patch(fp, writes, rule)
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "--max-connections", "10", "--interval", "1m30s",
                      "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp)[1] == ["kubectl", *patch_args(DR_RESOURCE, "canary-rule")]
    assert writes.patches[0] == {"spec": {"trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 10},
                           "http": GUIDE_POLICY["connectionPool"]["http"]},
        "outlierDetection": {**GUIDE_POLICY["outlierDetection"], "interval": "1m30s"}}},
        "metadata": {"resourceVersion": "10"}}
    sent = writes.sent[0]
    assert sent["metadata"]["name"] == "canary-rule" and sent["metadata"]["resourceVersion"] == "10"
    assert sent["spec"]["subsets"] == rule["spec"]["subsets"]
    policy = sent["spec"]["trafficPolicy"]
    assert policy["tls"] == TLS and policy["loadBalancer"] == LB
    assert policy["portLevelSettings"] == rule["spec"]["trafficPolicy"]["portLevelSettings"]
    assert policy["connectionPool"]["tcp"] == {"connectTimeout": "2s", "maxConnections": 10}
    assert policy["outlierDetection"]["interval"] == "1m30s"
    step = result.json()["plan"][0]
    assert step["restore"].startswith("kubectl replace -f ") and step["backup"].endswith(
        "-destinationrule-canary-rule.yaml")


def test_options_not_given_keep_hand_tuned_values(fp, mesh_cli):
    tuned = json.loads(json.dumps(GUIDE_POLICY))
    tuned["connectionPool"]["tcp"]["maxConnections"] = 500
    register_service_read(fp, [service(), dr(policy=tuned)])
    writes = Writes()
    register_patch(fp, writes, dr(policy=tuned))
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "--consecutive-5xx", "3")
    assert result.exit_code == 0, result.stdout
    policy = writes.sent[0]["spec"]["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["maxConnections"] == 500
    assert policy["outlierDetection"]["consecutive5xxErrors"] == 3


def test_second_run_plans_nothing(fp, mesh_cli):
    register_service_read(fp, [service(), dr(policy=GUIDE_POLICY)])
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 1
    assert result.json()["plan"][0]["status"] == "unchanged"


def test_dry_run_shows_the_diff(fp, mesh_cli):
    register_service_read(fp, [service(), dr(subsets=[subset("stable", "v1")])])
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "--dry-run")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 1
    assert "~ circuit-breaker destinationrule/my-app: connectionPool and outlierDetection in the top-level " \
           "trafficPolicy [planned]" in result.stdout
    assert "    +    outlierDetection:" in result.stdout
    assert "    +      consecutive5xxErrors: 5" in result.stdout


def test_refuses_several_rules_and_names_them(fp, mesh_cli):
    rules = [dr("first", created="2024-01-01T00:00:00Z"), dr("second", created="2024-03-01T00:00:00Z")]
    register_service_read(fp, [service(), *rules], occurrences=2)
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 3
    assert len(api_calls(fp)) == 1
    check = result.json()["checks"][0]
    assert check["result"] == "fail" and check["objects"] == ["first", "second"]
    assert "Istio keeps only the first one's traffic policy" in check["message"]
    text = mesh_cli("circuit-breaker", "my-app", "-n", NS)
    assert "✗ 2 DestinationRules define host my-app.my-app.svc.cluster.local: first, second" in text.stdout


def test_force_with_several_rules_changes_the_oldest(fp, mesh_cli):
    rules = [dr("second", created="2024-03-01T00:00:00Z"), dr("first", created="2024-01-01T00:00:00Z")]
    register_service_read(fp, [service(), *rules])
    writes = Writes()
    register_patch(fp, writes, rules[1])
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "--force")
    assert result.exit_code == 0
    assert writes.sent[0]["metadata"]["name"] == "first"


def test_conflict_retried(fp, mesh_cli):
    register_service_read(fp, [service(), dr()])
    writes = Writes()
    register_patch(fp, writes, dr(), returncode=1, stderr=CONFLICT)
    register_kubectl(fp, ["get", DR_RESOURCE, "my-app", "-n", NS, "-o", "json"],
                     stdout=json.dumps(dr(rv="11", policy={"tls": TLS})))
    register_patch(fp, writes, dr(rv="11", policy={"tls": TLS}))
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS)
    assert result.exit_code == 0, result.stderr
    assert writes.sent[1]["metadata"]["resourceVersion"] == "11"
    assert writes.sent[1]["spec"]["trafficPolicy"]["tls"] == TLS


def test_forbidden_exits_4(fp, mesh_cli):
    register_service_read(fp, [service(), dr()])
    register_patch(fp, Writes(), dr(), returncode=1,
                   stderr='Error from server (Forbidden): destinationrules.networking.istio.io "my-app" is '
                          'forbidden: User "dev" cannot update resource\n')
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 4
    assert result.json()["error"]["type"] == "Forbidden"


def test_server_that_drops_the_change_fails_the_step(fp, mesh_cli):
    register_service_read(fp, [service(), dr()])
    answer = ["kubectl", *patch_args(DR_RESOURCE, "my-app")]
    answer[answer.index("<patch>")] = fp.any(min=1, max=1)
    fp.register(answer, stdout=json.dumps(dr(rv="12")))  # answers without the policy
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 1
    step = result.json()["plan"][0]
    assert step["status"] == "failed" and "did not keep the change" in step["reason"]


@pytest.mark.parametrize("argv,needle", [
    (["--max-connections", "0"], 'invalid --max-connections "0": must be between 1 and 2147483647'),
    (["--max-connections", "many"], 'invalid --max-connections "many": must be an integer'),
    (["--http1-max-pending-requests", "-5"], 'invalid --http1-max-pending-requests "-5"'),
    (["--http2-max-requests", "3000000000"], 'invalid --http2-max-requests "3000000000"'),
    (["--consecutive-5xx", "0"], 'invalid --consecutive-5xx "0"'),
    (["--interval", "30"], '--interval: invalid duration "30"'),
    (["--interval", "0s"], '--interval: invalid duration "0s": must be at least 1ms'),
    (["--base-ejection-time", "1x"], '--base-ejection-time: invalid duration "1x"'),
    (["--max-ejection-percent", "101"], 'invalid --max-ejection-percent "101": must be between 0 and 100'),
    (["--max-ejection-percent", "50%"], 'invalid --max-ejection-percent "50%"'),
    (["--h2-upgrade-policy", "SOMETIMES"], 'invalid --h2-upgrade-policy "SOMETIMES"'),
])
def test_bad_values_exit_2_before_any_call(fp, mesh_cli, argv, needle):
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, *argv)
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(api_calls(fp)) == 0


@pytest.mark.parametrize("argv,needle", [
    (["circuit-breaker", "Bad_Svc"], 'invalid service name "Bad_Svc"'),
    (["circuit-breaker"], "missing SVC"),
    (["circuit-breaker", "remove"], "Missing argument 'SVC'"),
    (["circuit-breaker", "status", "a.b"], 'invalid service name "a.b"'),
    (["circuit-breaker", "my-app", "--bogus", "1"], "No such option '--bogus'"),
])
def test_bad_usage_exits_2(fp, mesh_cli, argv, needle):
    result = mesh_cli(*argv)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(api_calls(fp)) == 0


def test_h2_policy_is_case_insensitive(fp, mesh_cli):
    register_service_read(fp, [service()])
    result = mesh_cli("circuit-breaker", "my-app", "-n", NS, "--h2-upgrade-policy", "upgrade", "--dry-run",
                      "-o", "json")
    doc = result.json()
    assert doc["requested"]["circuitBreaker"]["settings"]["connectionPool"]["http"]["h2UpgradePolicy"] == "UPGRADE"
    assert doc["circuitBreaker"]["settings"] == {}  # a dry run: the live state, no breaker yet


def test_remove_keeps_tls_and_load_balancer(fp, mesh_cli):
    rule = dr(subsets=[subset("stable", "v1")], policy={"tls": TLS, "loadBalancer": LB, **GUIDE_POLICY})
    register_service_read(fp, [service(), rule])
    writes = Writes()
    register_patch(fp, writes, rule)
    result = mesh_cli("circuit-breaker", "remove", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert writes.patches[0] == {"spec": {"trafficPolicy": {"connectionPool": None, "outlierDetection": None}},
                                 "metadata": {"resourceVersion": "10"}}
    assert writes.sent[0]["spec"] == {"host": "my-app", "subsets": [subset("stable", "v1")],
                                      "trafficPolicy": {"tls": TLS, "loadBalancer": LB}}
    assert result.json()["plan"][0]["status"] == "applied"


def test_remove_drops_an_emptied_policy_and_twice_plans_nothing(fp, mesh_cli):
    register_service_read(fp, [service(), dr(policy=GUIDE_POLICY)])
    writes = Writes()
    register_patch(fp, writes, dr(policy=GUIDE_POLICY))
    assert mesh_cli("circuit-breaker", "remove", "my-app", "-n", NS).exit_code == 0
    assert writes.patches[0]["spec"] == {"trafficPolicy": None}
    assert writes.sent[0]["spec"] == {"host": "my-app"}
    register_service_read(fp, [service(), dr()])
    before = len(api_calls(fp))
    again = mesh_cli("circuit-breaker", "remove", "my-app", "-n", NS, "-o", "json")
    assert again.exit_code == 0 and len(api_calls(fp)) == before + 1
    assert again.json()["plan"][0]["status"] == "unchanged"


def test_remove_without_rule(fp, mesh_cli):
    register_service_read(fp, [service()])
    result = mesh_cli("circuit-breaker", "remove", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert result.json()["checks"][0]["result"] == "skip" and result.json()["plan"] == []


def test_status(fp, mesh_cli):
    rules = [dr("first", policy={"tls": TLS, **GUIDE_POLICY}),
             dr("later", created="2025-01-01T00:00:00Z", policy={"outlierDetection": {"interval": "1s"}})]
    register_service_read(fp, [service(), *rules], occurrences=2)
    result = mesh_cli("circuit-breaker", "status", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    doc = result.json()
    breaker = dict(doc["circuitBreaker"])
    assert breaker.pop("limits")["consecutive5xxErrors"] == 5
    assert breaker == {"host": "my-app.my-app.svc.cluster.local", "destinationRules": ["first", "later"],
                       "source": "first", "settings": GUIDE_POLICY, "ignored": ["later"],
                       "service": "my-app", "namespace": NS}
    assert [(c["id"], c["result"]) for c in doc["checks"]] == [("circuit-breaker", "pass"), ("ignored-policy", "warn")]
    text = mesh_cli("circuit-breaker", "status", "my-app", "-n", NS).stdout
    assert "connectionPool.tcp.maxConnections: 100" in text
    assert "outlierDetection.baseEjectionTime: 60s" in text
    assert "! destinationrule/later has a circuit breaker that Istio ignores" in text


def test_status_without_breaker(fp, mesh_cli):
    register_service_read(fp, [service()])
    result = mesh_cli("circuit-breaker", "status", "my-app", "-n", NS, "-o", "json")
    assert result.exit_code == 0
    assert result.json()["checks"][0]["message"] == (
        "no circuit breaker for my-app.my-app.svc.cluster.local (no DestinationRule)")


@pytest.mark.parametrize("argv", [
    ["circuit-breaker", "my-app", "-n", NS, "--context", "prod"],
    ["--context", "prod", "circuit-breaker", "-n", NS, "my-app"],
    ["circuit-breaker", "--interval", "10s", "my-app", "--context=prod", "-n", NS],
    ["circuit-breaker", "-n", NS, "status", "my-app", "--context", "prod"],
])
def test_global_options_anywhere(fp, mesh_cli, argv):
    register_service_read(fp, [service(), dr(policy=GUIDE_POLICY)], prefix=("--context", "prod"))
    result = mesh_cli(*argv, "--dry-run")
    assert result.exit_code == 0, result.stderr
