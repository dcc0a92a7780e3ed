"""`canary run` end to end: the real kubectl against the test API server, a real Prometheus
(Debian's package) scraping the traffic simulator, reached through the API server's service
proxy as a user's kubectl reaches it. Intervals of a few seconds; waits follow observed state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.cluster.service_proxy import proxy_service
from tests.prometheus_server import PrometheusServer
from tests.traffic import TrafficSimulator

INTERVAL = "3s"
ANNOTATION = "kubectl-mesh.io/canary"


def app(ns: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{istio-injection: enabled}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-v1, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web, version: v1}}}}
  template:
    metadata: {{labels: {{app: web, version: v1}}}}
    spec: {{containers: [{{name: app, image: "web:1"}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-v2, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web, version: v2}}}}
  template:
    metadata: {{labels: {{app: web, version: v2}}}}
    spec: {{containers: [{{name: app, image: "web:2"}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80}}]
"""


@pytest.fixture(scope="module")
def simulator_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shared_prometheus(tmp_path_factory, simulator_port):
    """One Prometheus for the module (it takes ~5 s to start scraping); every test's simulator
    listens on the same port, and every test uses its own namespace, so series never mix."""
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{simulator_port}"]) as server:
        yield server


class Canary:
    """A test's namespace, simulator and Prometheus, and what the run left on the cluster."""

    def __init__(self, e2e, ns, simulator, prometheus):
        self.e2e, self.ns, self.simulator, self.prometheus = e2e, ns, simulator, prometheus

    def args(self, *extra: str, interval: str = INTERVAL) -> list[str]:
        return ["canary", "run", "web", "--stable", "v1", "--canary", "v2", "-n", self.ns, "--interval", interval,
                *extra]

    def vs(self) -> dict | None:
        return self.e2e.cluster.get("virtualservices", self.ns, "web")

    def weights(self) -> dict:
        vs = self.vs()
        if vs is None:
            return {}
        return {d["destination"]["subset"]: d["weight"] for d in vs["spec"]["http"][0]["route"]}

    def run_state(self) -> dict:
        vs = self.vs()
        return json.loads(vs["metadata"]["annotations"][ANNOTATION]).get("run", {}) if vs else {}

    def wait_for(self, predicate, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; run state {self.run_state()}")

    def vs_writes(self) -> list[dict]:
        return [r.json() for r in self.e2e.cluster.requests.writes() if r.resource == "virtualservices"]


@pytest.fixture
def canary(request, e2e, shared_prometheus, simulator_port):
    if not shared_prometheus.running:  # a test stopped it
        shared_prometheus.start()
    ns = "shop-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    e2e.cluster.load(app(ns))
    proxy_service(e2e.cluster, "istio-system", "prometheus", 9090, shared_prometheus.address)
    marker = request.node.get_closest_marker("traffic")
    options = dict(marker.kwargs) if marker else {}
    simulator = TrafficSimulator(e2e.kubeconfig, services=[f"{ns}/web"], listen=f"127.0.0.1:{simulator_port}",
                                 rps=options.pop("rps", 200), refresh=0.2, **options)
    for attempt in range(20):  # the port Prometheus scrapes may be held for a moment by a client's connection
        try:
            simulator.start()
            break
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.25)
    try:
        if simulator.rps:  # scraped, and the stable's series are in: the first interval has data
            shared_prometheus.wait_for(f'sum(istio_requests_total{{destination_workload_namespace="{ns}"}})',
                                       timeout=30)
        yield Canary(e2e, ns, simulator, shared_prometheus)
    finally:
        simulator.stop()
    e2e.cluster.assert_healthy()


def _result(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_a_healthy_canary_reaches_100(canary, mesh):
    started = time.monotonic()
    # --timeout bounds each step's calls, not the schedule: this run outlasts it.
    result = mesh(*canary.args("--steps", "10,50,100", "-o", "json", "--timeout", "8s"))
    assert result.returncode == 0, _result(result)
    assert time.monotonic() - started > 9
    doc = json.loads(result.stdout)["run"]
    assert doc["outcome"] == "promoted" and doc["weight"] == 100
    assert [(m["weight"], m["decision"]) for m in doc["measurements"]] == [(10, "pass"), (50, "pass"), (100, "pass")]
    first = doc["measurements"][0]
    assert first["canary"]["successRate"] == 100 and first["canary"]["p99Ms"] < 25 and first["canary"]["requests"] >= 20
    assert first["stable"]["successRate"] == 100 and first["stable"]["requests"] > first["canary"]["requests"]
    # At 100% the stable gets nothing new; its interval may still reach back over the last
    # scrape of the step before, so it is small beside the canary's, not always zero.
    last = doc["measurements"][-1]
    assert (last["stable"]["requests"] or 0) < 0.2 * last["canary"]["requests"], last
    assert canary.weights() == {"stable": 0, "canary": 100}
    assert canary.run_state()["phase"] == "succeeded" and "holder" not in canary.run_state()
    assert "step 1/3: canary 10%" in result.stderr and "-> pass" in result.stderr
    # Subsets first, then weights: the DestinationRule existed before the first weighted route.
    assert [w["spec"]["http"][0]["route"][1]["weight"] for w in canary.vs_writes() if w and "spec" in w][:1] == [10]
    again = mesh(*canary.args("--steps", "10,50,100"))
    assert again.returncode == 0 and "already promoted to 100%" in again.stderr, _result(again)


def test_finish_makes_the_canary_the_stable_and_running_it_again_changes_nothing(canary, mesh):
    result = mesh(*canary.args("--steps", "50,100", "--finish", "-o", "json"))
    assert result.returncode == 0, _result(result)
    doc = json.loads(result.stdout)
    assert doc["run"]["outcome"] == "promoted" and doc["run"]["finished"] is True
    assert [(m["weight"], m["decision"]) for m in doc["run"]["measurements"]] == [(50, "pass"), (100, "pass")]
    # The finish's three writes follow the run's, in canary finish's order.
    assert [step["action"] for step in doc["plan"]][-3:] == ["subsets", "route", "subsets"]
    rule = canary.e2e.cluster.get("destinationrules", canary.ns, "web")
    assert [(s["name"], s["labels"]) for s in rule["spec"]["subsets"]] == [("stable", {"version": "v2"})]
    assert canary.weights() == {"stable": 100}
    recorded = json.loads(canary.vs()["metadata"]["annotations"][ANNOTATION])
    assert recorded == {"stable": "stable", "finished": "canary"}
    assert doc["canary"]["stable"]["labels"] == {"version": "v2"} and doc["canary"]["canary"] is None
    writes = len(canary.e2e.cluster.requests.writes())
    again = mesh(*canary.args("--steps", "50,100", "--finish"))
    assert again.returncode == 0 and "already finished: v2 is the stable" in again.stdout, _result(again)
    assert len(canary.e2e.cluster.requests.writes()) == writes  # nothing written, nothing measured
    assert canary.weights() == {"stable": 100}


@pytest.mark.traffic(error_rates={"v2": 0.2})
def test_5xx_canary_is_rolled_back_at_its_first_step(canary, mesh):
    result = mesh(*canary.args())
    assert result.returncode == 1, _result(result)
    assert "rolled back after 2 failed intervals at 10%: success rate" in result.stdout
    rate = float(result.stdout.split("success rate ")[1].split("%")[0])
    assert 65 < rate < 92
    assert "is below 99.00%" in result.stdout and "; stable: 100%, p99 " in result.stdout
    assert canary.weights() == {"stable": 100, "canary": 0}
    assert canary.run_state()["phase"] == "failed" and canary.run_state()["step"] == 0
    shown = mesh("canary", "status", "web", "-n", canary.ns)
    assert "Canary run:" in shown.stdout and "v1 -> v2, failed at step 1/4 (10%) (success rate" in shown.stdout
    # Never promoted: every weight written was 10 (the step) or 0 (the rollback).
    assert {w["spec"]["http"][0]["route"][1]["weight"] for w in canary.vs_writes() if "spec" in w} <= {10, 0}
    again = mesh(*canary.args())
    assert again.returncode == 3 and "--restart" in again.stdout, _result(again)


@pytest.mark.traffic(latencies={"v2": 800})
def test_slow_canary_is_rolled_back(canary, mesh):
    result = mesh(*canary.args("--failure-limit", "1", "-o", "json"))
    assert result.returncode == 1, _result(result)
    doc = json.loads(result.stdout)
    measured = doc["run"]["measurements"][0]
    assert measured["decision"] == "fail" and measured["canary"]["p99Ms"] > 500 and measured["stable"]["p99Ms"] < 25
    assert any("p99 latency" in c["message"] and "is above 500ms" in c["message"] for c in doc["checks"])
    assert canary.weights() == {"stable": 100, "canary": 0}


@pytest.mark.traffic(rps=0)
def test_no_traffic_is_inconclusive_and_never_promoted(canary, mesh):
    result = mesh(*canary.args("-o", "json", interval="2s"))
    assert result.returncode == 5, _result(result)
    doc = json.loads(result.stdout)
    assert [m["decision"] for m in doc["run"]["measurements"]] == ["inconclusive", "inconclusive"]
    assert doc["error"]["type"] == "Inconclusive"
    assert "lower --min-requests" in result.stderr and "fewer than --min-requests 20" in result.stderr
    assert canary.weights() == {"stable": 90, "canary": 10}  # held at the first step
    assert canary.run_state()["phase"] == "inconclusive"


def test_prometheus_failing_with_on_error_hold_keeps_the_weight(canary, mesh, e2e):
    def break_prometheus_once_running():
        canary.wait_for(lambda: canary.run_state().get("phase") == "running", "the run to start")
        proxy_service(e2e.cluster, "istio-system", "prometheus", 9090, "127.0.0.1:1")  # a closed port

    breaker = threading.Thread(target=break_prometheus_once_running, daemon=True)
    breaker.start()
    result = mesh(*canary.args("--on-error", "hold", interval="2s"))
    breaker.join(timeout=5)
    assert result.returncode == 4, _result(result)
    assert "the canary weight is kept at 10% (--on-error hold)" in result.stderr
    assert canary.weights() == {"stable": 90, "canary": 10}
    assert canary.run_state()["phase"] == "held"


def test_ctrl_c_then_rerun_resumes_at_the_same_step(canary, mesh, mesh_popen):
    process = mesh_popen(*canary.args("--steps", "10,50"))
    canary.wait_for(lambda: canary.run_state().get("step") == 1, "step 2")
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, f"{out}\n{err}"
    assert "interrupted at step 2/2 (50%)" in err and "run the same command again to resume" in err
    assert canary.weights() == {"stable": 50, "canary": 50}
    assert canary.run_state()["phase"] == "interrupted" and "holder" not in canary.run_state()
    writes_before = len(canary.vs_writes())

    result = mesh(*canary.args("--steps", "10,50", "-o", "json"))
    assert result.returncode == 0, _result(result)
    assert "resuming run" in result.stderr and "at step 2/2 (50%)" in result.stderr
    assert [m["weight"] for m in json.loads(result.stdout)["run"]["measurements"]] == [50]
    later = canary.vs_writes()[writes_before:]
    assert later and all(w["spec"]["http"][0]["route"][1]["weight"] == 50 for w in later if "spec" in w)  # never 10


def test_a_second_concurrent_run_is_refused(canary, mesh, e2e):
    # The first one started as a shell starts a background job, SIGINT ignored: Ctrl-C still stops it.
    first = subprocess.Popen(["kubectl", "mesh", *canary.args("--interval", "30s")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=e2e.env, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        canary.wait_for(lambda: canary.run_state().get("holder"), "the first run to hold the canary")
        second = mesh(*canary.args())
        assert second.returncode == 3, _result(second)
        assert "another canary run holds service web" in second.stdout and "--force" in second.stdout
        assert first.poll() is None  # the first run goes on
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130


def test_dry_run_prints_the_schedule_and_queries_and_writes_nothing(canary, mesh, e2e):
    e2e.cluster.requests.clear()
    result = mesh(*canary.args("--dry-run"))
    assert result.returncode == 0, _result(result)
    assert "step 1/4: canary  10%, stable  90%  decided at +3s at the earliest" in result.stdout
    assert ('canary success rate: sum(rate(istio_requests_total{reporter="destination", '
            f'destination_workload_namespace="{canary.ns}", destination_workload=~"web-v2", response_code!~"5.*"}}[3s]))'
            in result.stdout)
    assert 'stable p99:          histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket' in result.stdout
    assert e2e.cluster.requests.writes() == []
    assert not [r for r in e2e.cluster.requests if "/proxy/" in r.path]  # no query either


@pytest.mark.cluster(ready_after=300.0)
@pytest.mark.traffic(rps=0)
def test_no_ready_canary_pod_is_refused_before_any_traffic_moves(canary, mesh, e2e):
    result = mesh(*canary.args())
    assert result.returncode == 3, _result(result)
    assert "canary subset canary (version=v2) selects no ready pod" in result.stdout
    assert canary.vs() is None and not [w for w in e2e.cluster.requests.writes() if w.resource == "virtualservices"]


def test_prometheus_unreachable_before_the_start_changes_nothing(canary, mesh, e2e):
    proxy_service(e2e.cluster, "istio-system", "prometheus", 9090, "127.0.0.1:1")
    result = mesh(*canary.args())
    assert result.returncode == 4 and "nothing was changed" in result.stderr, _result(result)
    assert canary.vs() is None and e2e.cluster.requests.writes() == []


def test_no_prometheus_found_says_where_it_looked(canary, mesh, e2e):
    e2e.cluster.delete("services", "istio-system", "prometheus")
    result = mesh(*canary.args())
    assert result.returncode == 4, _result(result)
    assert "no Prometheus found (looked for istio-system/prometheus, monitoring/prometheus-operated" in result.stderr
    assert "--prometheus NS/NAME:PORT" in result.stderr


NAMESPACE_SCOPED = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: istio-networking-edit
  labels: {rbac.authorization.k8s.io/aggregate-to-edit: "true"}
rules:
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules, serviceentries, gateways, sidecars]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [security.istio.io]
  resources: [peerauthentications, authorizationpolicies]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dev-edit, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: dev, apiGroup: rbac.authorization.k8s.io}]
"""
PROXY_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: query-prometheus, namespace: istio-system}
rules:
- apiGroups: [""]
  resources: [services/proxy]
  resourceNames: ["prometheus:9090"]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dev-query-prometheus, namespace: istio-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: query-prometheus}
subjects: [{kind: User, name: dev, apiGroup: rbac.authorization.k8s.io}]
"""


@pytest.mark.cluster(users=["dev"])
def test_a_namespace_scoped_user_runs_it_with_get_on_services_proxy(canary, mesh, e2e):
    e2e.cluster.load(NAMESPACE_SCOPED.replace("NS", canary.ns))
    args = canary.args("--steps", "50", "--context", "dev")
    refused = mesh(*args)  # discovery may not read istio-system, and the proxy is not granted
    assert refused.returncode == 4, _result(refused)
    assert "istio-system (not allowed to read services there)" in refused.stderr and canary.vs() is None
    named = mesh(*args, "--prometheus", "istio-system/prometheus:9090")
    assert named.returncode == 4 and "needs get on services/proxy in istio-system" in named.stderr, _result(named)
    assert canary.vs() is None  # nothing changed before Prometheus answered

    e2e.cluster.load(PROXY_ROLE)
    result = mesh(*args, "--prometheus", "istio-system/prometheus:9090", "-o", "json")
    assert result.returncode == 0, _result(result)
    assert [m["decision"] for m in json.loads(result.stdout)["run"]["measurements"]] == ["pass"]
    assert canary.weights() == {"stable": 50, "canary": 50}
    assert {r.user for r in e2e.cluster.requests if "/proxy/" in r.path and r.status == 200} == {"dev"}


# Last in the module: it stops the shared Prometheus (a test after it would start it again).
def test_prometheus_stopped_mid_run_exits_4_and_rolls_back(canary, mesh_popen):
    process = mesh_popen(*canary.args("--steps", "10,50,100"))
    try:
        canary.wait_for(lambda: canary.run_state().get("step") == 1, "the first step to pass")
        canary.prometheus.stop()
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 4, f"{process.returncode}\n{out}\n{err}"
    assert "error trying to reach service" in err and "rolled back: canary weight 0 (was 50%)" in err
    assert canary.weights() == {"stable": 100, "canary": 0}
    assert canary.run_state()["phase"] == "aborted"
