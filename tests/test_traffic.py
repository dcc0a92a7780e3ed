"""The traffic simulator (tests/traffic): its routing, its metrics, and a real Prometheus scraping
it, queried through the test API server's service proxy with the plugin's own queries."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubectl_mesh.analysis import prometheus, promql
from tests.cluster import TestCluster
from tests.cluster.service_proxy import proxy_service
from tests.prometheus_server import PrometheusServer, prometheus_factory
from tests.traffic import TrafficSimulator
from tests.traffic.routing import Backend, route_table

FIXTURES = (prometheus_factory,)  # used by name

NS = "shop"


def app(ns: str = NS) -> list[dict]:
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
             "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}]
    for version, replicas in (("v1", 2), ("v2", 1)):
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"web-{version}", "namespace": ns},
                     "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", "version": version}},
                              "template": {"metadata": {"labels": {"app": "web", "version": version}},
                                           "spec": {"containers": [{"name": "app", "image": f"web:{version}"}]}}}})
    return objs


def canary(weight: int, ns: str = NS) -> list[dict]:
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "web", "namespace": ns},
         "spec": {"host": "web", "subsets": [{"name": "stable", "labels": {"version": "v1"}},
                                             {"name": "canary", "labels": {"version": "v2"}}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "web", "namespace": ns},
         "spec": {"hosts": ["web"], "http": [{"route": [
             {"destination": {"host": "web", "subset": "stable"}, "weight": 100 - weight},
             {"destination": {"host": "web", "subset": "canary"}, "weight": weight}]}]}},
    ]


# -- routing (pure) ------------------------------------------------------------------------------
def _objects(cluster: TestCluster) -> dict:
    return {"services": cluster.list("services"), "pods": cluster.list("pods"),
            "replicasets": cluster.list("replicasets"), "virtual_services": cluster.list("virtualservices"),
            "destination_rules": cluster.list("destinationrules")}


def test_routes_follow_the_virtual_service_weights_to_the_subsets_pods():
    with TestCluster() as cluster:
        cluster.load(app() + canary(10))
        table = {r.name: r for r in route_table(**_objects(cluster))}
    web = table["web"]
    assert web.host == "web.shop.svc.cluster.local"
    assert [(d.subset, d.share) for d in web.destinations] == [("stable", 0.9), ("canary", 0.1)]
    assert web.destinations[0].backends == [Backend("web-v1", NS, "v1")] * 2
    assert web.destinations[1].backends == [Backend("web-v2", NS, "v2")]


def test_without_a_virtual_service_requests_spread_over_the_pods():
    with TestCluster() as cluster:
        cluster.load(app())
        web = {r.name: r for r in route_table(**_objects(cluster))}["web"]
    assert [d.share for d in web.destinations] == [1.0]
    assert sorted(b.version for b in web.destinations[0].backends) == ["v1", "v1", "v2"]


def test_gateway_only_routes_are_not_the_mesh_and_missing_subsets_have_no_backend():
    with TestCluster() as cluster:
        objs = canary(50)
        objs[1]["spec"]["gateways"] = ["shop-gateway"]
        cluster.load(app() + objs)
        assert {r.name: r for r in route_table(**_objects(cluster))}["web"].destinations[0].subset is None
        vs = canary(50)[1]
        vs["spec"]["http"][0]["route"][1]["destination"]["subset"] = "nowhere"
        cluster.apply(vs)
        objects = _objects(cluster)
        objects["virtual_services"] = [vs]
        web = {r.name: r for r in route_table(**objects)}["web"]
    assert [(d.subset, bool(d.backends)) for d in web.destinations] == [("stable", True), ("nowhere", False)]


# -- the simulator's metrics ------------------------------------------------------------------------
def _families(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        return {f.name: f for f in text_string_to_metric_families(answer.read().decode())}


def test_metrics_carry_istios_labels_and_follow_weight_changes(tmp_path):
    with TestCluster() as cluster:
        cluster.load(app() + canary(0))
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
        with TrafficSimulator(kubeconfig, rps=200, error_rates={"v2": 1.0}, latencies={"v1": 3}, refresh=0.1) as sim:
            deadline = time.monotonic() + 10
            while sum(sim.sent.values()) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert set(sim.sent) == {("web", "v1", "200")}  # weight 0: the canary gets nothing
            cluster.apply(canary(100)[1])
            while sim.shares(NS, "web").get("canary") != 1.0 and time.monotonic() < deadline:
                time.sleep(0.05)
            before = sim.sent[("web", "v2", "500")]
            while sim.sent[("web", "v2", "500")] < before + 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            families = _families(sim.address)
    samples = [s for s in families["istio_requests"].samples if s.name == "istio_requests_total"]
    v2 = [s for s in samples if s.labels["destination_version"] == "v2" and s.labels["reporter"] == "destination"]
    assert v2 and {s.labels["response_code"] for s in v2} == {"500"}
    assert v2[0].labels | {"response_code": "500"} == {
        "reporter": "destination", "source_workload": "loadgen", "source_workload_namespace": "loadgen",
        "source_principal": "spiffe://cluster.local/ns/loadgen/sa/loadgen", "destination_workload": "web-v2",
        "destination_workload_namespace": NS, "destination_service": "web.shop.svc.cluster.local",
        "destination_service_name": "web", "destination_service_namespace": NS, "destination_version": "v2",
        "request_protocol": "http", "response_code": "500", "response_flags": "-",
        "connection_security_policy": "mutual_tls"}
    buckets = [s for s in families["istio_request_duration_milliseconds"].samples
               if s.name.endswith("_bucket") and s.labels["destination_version"] == "v1"
               and s.labels["reporter"] == "destination"]
    by_le = {s.labels["le"]: s.value for s in buckets}
    assert by_le["1.0"] == 0 and by_le["5.0"] == by_le["+Inf"] > 0  # 3 ms: between 1.5 and 3


def test_by_hand_it_serves_until_interrupted(tmp_path):
    with TestCluster() as cluster:
        cluster.load(app())
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
        process = subprocess.Popen([sys.executable, "-m", "tests.traffic", "--kubeconfig", str(kubeconfig),
                                    "--rps", "100", "--error-rate", "v2=0.5", "--latency", "v2=300"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
            time.sleep(0.5)
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert b'destination_workload="web-v2"' in answer.read()
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0
    bad = subprocess.run([sys.executable, "-m", "tests.traffic", "--kubeconfig", str(kubeconfig),
                          "--error-rate", "v2=1.5"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "VERSION=NUMBER (0-1)" in bad.stderr


def test_a_missing_prometheus_binary_fails_the_test_not_skips_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y --no-install-recommends prometheus"):
        PrometheusServer(tmp_path, ["127.0.0.1:1"]).start()


# -- a real Prometheus, through the service proxy, with the plugin's queries -------------------------
def test_real_prometheus_measures_what_the_simulator_sent(tmp_path, prometheus_factory):
    with TestCluster() as cluster:
        cluster.load(app() + canary(50))
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
        with TrafficSimulator(kubeconfig, rps=200, error_rates={"v2": 0.2}, latencies={"v2": 800}) as sim:
            prom = prometheus_factory([sim.address])
            proxy_service(cluster, "istio-system", "prometheus", 9090, prom.address)
            ref = prometheus.parse_service_ref("istio-system/prometheus:9090")
            canary_q = promql.side_queries(NS, ["web-v2"], 5)
            stable_q = promql.side_queries(NS, ["web-v1"], 5)
            prom.wait_for(canary_q.requests, lambda r: r and float(r[0]["value"][1]) > 100, timeout=60)

            def ask(query: str) -> float | None:
                result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw",
                                         ref.query_path(query, at=time.time())],
                                        capture_output=True, text=True, timeout=30)
                assert result.returncode == 0, result.stderr
                return prometheus.parse_answer(result.stdout)

            assert ask(canary_q.success_rate) == pytest.approx(80, abs=10)
            assert ask(canary_q.p99) > 500
            assert ask(stable_q.success_rate) == 100
            assert ask(stable_q.p99) < 25
            assert ask(promql.side_queries(NS, ["web-v3"], 5).requests) is None  # no such series: no data


def test_the_readmes_demo_files_are_valid():
    here = Path(__file__).resolve().parent / "traffic"
    checked = subprocess.run(["promtool", "check", "config", str(here / "prometheus.yml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with TestCluster() as cluster:
        cluster.load((here / "shop.yaml").read_text())
        web = {r.name: r for r in route_table(**_objects(cluster))}["web"]
    assert sorted(b.workload for b in web.destinations[0].backends) == ["web-v1", "web-v1", "web-v2"]
