"""canary run at the process boundary: usage errors (exit 2, before any call), and how
Prometheus is asked and found through faked kubectl calls (tests/e2e/test_canary_run.py runs
the real thing)."""

from __future__ import annotations

import json

import pytest

from kubectl_mesh import errors
from kubectl_mesh.analysis.prometheus import PrometheusError, ServiceRef, parse_url
from kubectl_mesh.metrics import Client, discover
from kubectl_mesh.runner import Runner
from tests.helpers import DATA, calls_made, register_kubectl

RUN = ("canary", "run", "web", "--stable", "v1", "--canary", "v2", "-n", "shop")
REF = ServiceRef("istio-system", "prometheus", "9090")


@pytest.mark.parametrize("extra,message", [
    (("--steps", "50,25"), 'invalid --steps "50,25": weights must rise'),
    (("--steps", "10,150"), "each weight must be between 1 and 100"),
    (("--interval", "0.5s"), 'invalid --interval "0.5s": must be between 1s and 24h'),
    (("--interval", "١m"), 'invalid --interval "١m"'),
    (("--success-rate", "101"), 'invalid --success-rate "101"'),
    (("--max-p99", "fast"), 'invalid --max-p99 "fast"'),
    (("--min-requests", "-1"), 'invalid --min-requests "-1"'),
    (("--failure-limit", "0"), 'invalid --failure-limit "0"'),
    (("--prometheus", "prometheus:9090"), 'invalid --prometheus "prometheus:9090": expected NAMESPACE/SERVICE[:PORT]'),
    (("--prometheus-url", "127.0.0.1:9090"), 'invalid --prometheus-url "127.0.0.1:9090"'),
    (("--prometheus", "a/b", "--prometheus-url", "http://x"), "give --prometheus or --prometheus-url, not both"),
    (("--steps", "10,50", "--finish"), "--finish needs a last step of 100"),
    (("--on-error", "ignore"), "Invalid value for '--on-error'"),
])
def test_bad_input_is_exit_2_before_any_call(mesh_cli, fp, extra, message):
    result = mesh_cli(*RUN, *extra)
    assert result.exit_code == 2, result
    assert message in result.stderr and "Traceback" not in result.stderr
    assert list(fp.calls) == []


def test_same_versions_are_a_usage_error(mesh_cli, fp):
    result = mesh_cli("canary", "run", "web", "--stable", "v1", "--canary", "v1", "-n", "shop")
    assert result.exit_code == 2 and "must be different versions" in result.stderr


def _raw(path_query: str) -> list[str]:
    return ["kubectl", "get", "--raw", path_query]


def test_a_query_through_the_service_proxy(fp):
    answer = (DATA / "prometheus" / "success-rate.json").read_text()
    fp.register(_raw(REF.query_path("up", at=5.0)), stdout=answer)
    assert Client(Runner(), REF, sleep=lambda s: None).query("up", at=5.0) == pytest.approx(83.448, abs=0.01)


def test_a_refused_connection_is_retried_then_unreachable(fp):
    stderr = ("Error from server (ServiceUnavailable): error trying to reach service: dial tcp 10.0.0.9:9090: "
              "connect: connection refused\n")
    fp.register(_raw(REF.query_path("up", at=5.0)), stderr=stderr, returncode=1, occurrences=3)
    slept = []
    with pytest.raises(PrometheusError) as caught:
        Client(Runner(), REF, sleep=slept.append).query("up", at=5.0)
    assert caught.value.kind == "unreachable" and slept == [1.0, 1.0]
    assert "error trying to reach service" in caught.value.message


def test_forbidden_says_which_right_is_needed(fp):
    stderr = ('Error from server (Forbidden): services "prometheus:9090" is forbidden: User "dev" cannot get '
              'resource "services/proxy" in API group "" in the namespace "istio-system"\n')
    fp.register(_raw(REF.query_path("up", at=5.0)), stderr=stderr, returncode=1, occurrences=3)
    with pytest.raises(PrometheusError, match="needs get on services/proxy in istio-system, or use --prometheus-url"):
        Client(Runner(), REF, sleep=lambda s: None).query("up", at=5.0)


def test_a_rejected_query_is_not_retried(fp):
    answer = (DATA / "prometheus" / "error-bad-data.json").read_text()
    fp.register(_raw(REF.query_path("up(", at=5.0)), stdout=answer)
    with pytest.raises(PrometheusError, match="bad_data"):
        Client(Runner(), REF, sleep=lambda s: None).query("up(", at=5.0)
    assert calls_made(fp) == [_raw(REF.query_path("up(", at=5.0))]


def test_a_direct_url_that_is_closed_is_unreachable():
    client = Client(Runner(), parse_url("http://127.0.0.1:1"), sleep=lambda s: None)
    with pytest.raises(PrometheusError, match="Prometheus at http://127.0.0.1:1 is unreachable"):
        client.query("up")


def _services(*items):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def _svc(ns, name, ports):
    return {"kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": {"ports": ports}}


def test_discovery_skips_namespaces_it_may_not_read(fp):
    register_kubectl(fp, ["get", "services", "prometheus", "-n", "istio-system", "--ignore-not-found", "-o", "json"],
                     stderr='Error from server (Forbidden): services "prometheus" is forbidden: User "dev" cannot get '
                            'resource "services" in API group "" in the namespace "istio-system"\n', returncode=1)
    register_kubectl(fp, ["get", "services", "prometheus-operated", "prometheus-k8s", "kube-prometheus-stack-prometheus",
                          "prometheus-server", "prometheus", "-n", "monitoring", "--ignore-not-found", "-o", "json"],
                     stdout=_services(_svc("monitoring", "prometheus-k8s", [{"name": "web", "port": 9090},
                                                                             {"name": "reloader", "port": 8080}])))
    found, tried = discover(Runner())
    assert found == ServiceRef("monitoring", "prometheus-k8s", "9090")
    assert tried == ["istio-system (not allowed to read services there)", "monitoring/prometheus-operated"]


def test_discovery_that_finds_nothing_lists_every_place(fp):
    fp.register(["kubectl", "get", "services", fp.any()], stdout="", occurrences=4)
    found, tried = discover(Runner())
    assert found is None
    assert tried[0] == "istio-system/prometheus" and tried[-1] == "observability/prometheus" and len(tried) == 8


def test_an_inconclusive_exit_code_is_documented():
    assert errors.INCONCLUSIVE == 5
