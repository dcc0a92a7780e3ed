"""The test API server's service proxy (tests/cluster/service_proxy.py), through the real kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cluster.fixtures import kubeconfig, kubectl, test_cluster
from tests.cluster.service_proxy import parse_spec, proxy_service

# The server's pytest fixtures, used here by name.
FIXTURES = (kubeconfig, kubectl, test_cluster)

BASE = "/api/v1/namespaces/istio-system/services"


class Upstream(BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):
        Upstream.seen.append((self.path, self.headers.get("Accept")))
        if "status=400" in self.path:
            code, body = 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        else:
            code, body = 200, {"status": "success", "path": self.path}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Upstream.seen = []
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_forwards_path_and_query_and_answers_what_upstream_answered(test_cluster, kubectl, upstream):
    proxy_service(test_cluster, "istio-system", "prometheus", 9090, upstream)
    for written in ("prometheus:9090", "http:prometheus:9090", "prometheus:http", "prometheus"):
        result = kubectl("get", "--raw", f"{BASE}/{written}/proxy/api/v1/query?query=up%7Ba%3D%22b%22%7D&time=5")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["path"] == "/api/v1/query?query=up%7Ba%3D%22b%22%7D&time=5"
    record = test_cluster.requests.matching(path="/proxy/")[-1]
    assert (record.verb, record.resource, record.subresource, record.namespace) == ("get", "services", "proxy",
                                                                                    "istio-system")
    # The Service is there to be discovered, as a real Prometheus' would be.
    assert test_cluster.get("services", "istio-system", "prometheus")["spec"]["ports"][0]["port"] == 9090


def test_an_upstream_error_status_reaches_kubectl(test_cluster, kubectl, upstream):
    proxy_service(test_cluster, "istio-system", "prometheus", 9090, upstream)
    result = kubectl("get", "--raw", f"{BASE}/prometheus:9090/proxy/api/v1/query?status=400")
    assert result.returncode == 1 and "Error from server (BadRequest)" in result.stderr


@pytest.mark.parametrize("path,message", [
    ("nope:9090", 'Error from server (NotFound): services "nope" not found'),
    ("prometheus:9091", 'Error from server (ServiceUnavailable): no service port "9091" found for service "prometheus"'),
    ("istiod:15014", 'Error from server (ServiceUnavailable): no endpoints available for service "istiod"'),
])
def test_kube_apiservers_errors(test_cluster, kubectl, upstream, path, message):
    proxy_service(test_cluster, "istio-system", "prometheus", 9090, upstream)
    result = kubectl("get", "--raw", f"{BASE}/{path}/proxy/api/v1/query")
    assert result.returncode == 1 and result.stderr.strip() == message


def test_a_stopped_upstream_is_503_connection_refused(test_cluster, kubectl, upstream):
    proxy_service(test_cluster, "istio-system", "prometheus", 9090, "127.0.0.1:1")
    result = kubectl("get", "--raw", f"{BASE}/prometheus:9090/proxy/api/v1/query")
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error from server (ServiceUnavailable): error trying to reach service: "
                                     "dial tcp 127.0.0.1:1: connect: connection refused")


def test_authorized_as_get_on_services_proxy(test_cluster, kubectl, upstream):
    proxy_service(test_cluster, "istio-system", "prometheus", 9090, upstream)
    test_cluster.forbid("get", "services/proxy", namespace="istio-system")
    result = kubectl("get", "--raw", f"{BASE}/prometheus:9090/proxy/api/v1/query")
    assert result.returncode == 1 and 'cannot get resource "services/proxy"' in result.stderr
    assert Upstream.seen == []
    assert kubectl("get", "services", "-n", "istio-system", "prometheus").returncode == 0  # only the proxy


def test_only_loopback_targets():
    assert parse_spec("istio-system/prometheus:9090=127.0.0.1:19090") == ("istio-system", "prometheus", 9090,
                                                                          "127.0.0.1:19090")
    for bad in ("prometheus:9090=127.0.0.1:1", "a/b:1=10.0.0.1:80", "a/b=127.0.0.1:1"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_by_hand_a_bad_spec_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tests.cluster", "--kubeconfig", str(tmp_path / "kc"),
                             "--service-proxy", "prometheus=10.0.0.1:80"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "expected NS/NAME:PORT=127.0.0.1:PORT" in result.stderr
