"""Where Prometheus is, how to ask it, and what its HTTP API's answers mean.

Prometheus is reached through the Kubernetes API server's service proxy
(`/api/v1/namespaces/NS/services/NAME:PORT/proxy/api/v1/query`), so a query needs only the
user's kubectl credentials (`get` on `services/proxy` in Prometheus' namespace) and no
port-forward; or at a direct URL. An instant query's answer
(https://prometheus.io/docs/prometheus/latest/querying/api/) is one of:

- `{"status": "success", "data": {"resultType": "vector", "result": [{"value": [t, "v"]}]}}`:
  a number; an empty vector (no series matched: no traffic, or no telemetry) is "no data";
  `"NaN"` (0/0: no requests in the window) is "no data" too; `"+Inf"` is a real value (a
  quantile above the largest bucket);
- `{"status": "error", "errorType": "...", "error": "..."}`: an error, whatever the HTTP code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

# Where Prometheus usually runs, in the order tried: Istio's addon, then the common
# installations (prometheus-operator, kube-prometheus, kube-prometheus-stack, the community chart).
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("istio-system", "prometheus"),
    ("monitoring", "prometheus-operated"),
    ("monitoring", "prometheus-k8s"),
    ("monitoring", "kube-prometheus-stack-prometheus"),
    ("monitoring", "prometheus-server"),
    ("monitoring", "prometheus"),
    ("prometheus", "prometheus-server"),
    ("observability", "prometheus"),
)
PORT_NAMES = ("http-web", "web", "http", "http-prometheus")
DEFAULT_PORT = 9090
MAX_ANSWER = 1 << 20  # an instant query of one summed series is a few hundred bytes

_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SERVICE_REF = re.compile(rf"^(?P<ns>{_NAME})/(?P<name>{_NAME})(?::(?P<port>[0-9]{{1,5}}|{_NAME}))?$")


class PrometheusError(Exception):
    """Prometheus could not be asked, or answered with an error."""

    def __init__(self, message: str, *, kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # unreachable | error | bad-answer


@dataclass(frozen=True)
class ServiceRef:
    """A Prometheus Service reached through the API server's service proxy."""

    namespace: str
    name: str
    port: str  # number or port name, as kube-apiserver accepts it

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"

    def query_path(self, query: str, at: float | None = None) -> str:
        """The path for `kubectl get --raw`."""
        segment = quote(f"{self.name}:{self.port}", safe=":")
        return (f"/api/v1/namespaces/{self.namespace}/services/{segment}/proxy/api/v1/query?"
                + _params(query, at))

    def as_dict(self) -> dict:
        return {"via": "service-proxy", "service": f"{self.namespace}/{self.name}", "port": self.port}


@dataclass(frozen=True)
class DirectURL:
    """A Prometheus reached at its own address (--prometheus-url)."""

    url: str

    def __str__(self) -> str:
        return self.url

    def query_url(self, query: str, at: float | None = None) -> str:
        return f"{self.url.rstrip('/')}/api/v1/query?" + _params(query, at)

    def as_dict(self) -> dict:
        return {"via": "url", "url": self.url}


def _params(query: str, at: float | None) -> str:
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return urlencode(params, quote_via=quote)


def parse_service_ref(value: str) -> ServiceRef:
    """`NS/NAME[:PORT]` (PORT a number or a port name; default 9090)."""
    match = _SERVICE_REF.match(value or "")
    if not match:
        raise ValueError(f'invalid --prometheus "{value}": expected NAMESPACE/SERVICE[:PORT], '
                         "e.g. istio-system/prometheus:9090")
    port = match["port"] or str(DEFAULT_PORT)
    if port.isdigit() and not 0 < int(port) < 65536:
        raise ValueError(f'invalid --prometheus "{value}": port must be 1-65535')
    return ServiceRef(match["ns"], match["name"], port)


def parse_url(value: str) -> DirectURL:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f'invalid --prometheus-url "{value}": expected http(s)://HOST[:PORT][/PATH]')
    return DirectURL(value.rstrip("/"))


def service_port(service: dict) -> str | None:
    """The port to query on a Prometheus Service: a web port by name, else 9090, else the only one."""
    ports = [p for p in ((service.get("spec") or {}).get("ports") or []) if isinstance(p, dict)]
    for name in PORT_NAMES:
        for port in ports:
            if port.get("name") == name and port.get("port"):
                return str(port["port"])
    for port in ports:
        if port.get("port") == DEFAULT_PORT:
            return str(DEFAULT_PORT)
    if len(ports) == 1 and ports[0].get("port"):
        return str(ports[0]["port"])
    return None


def parse_answer(text: str) -> float | None:
    """The number an instant query answered, None for no data; PrometheusError otherwise."""
    if len(text) > MAX_ANSWER:
        raise PrometheusError(f"Prometheus answered {len(text)} bytes, more than the {MAX_ANSWER} expected",
                              kind="bad-answer")
    try:
        doc = json.loads(text)
    except ValueError:
        raise PrometheusError(f"Prometheus answered something that is not JSON: {_excerpt(text)!r}",
                              kind="bad-answer") from None
    if not isinstance(doc, dict):
        raise PrometheusError("Prometheus answered JSON that is not an API response", kind="bad-answer")
    if doc.get("status") != "success":
        kind = doc.get("errorType") or "error"
        raise PrometheusError(f"Prometheus answered an error ({_excerpt(str(kind))}): "
                              f"{_excerpt(str(doc.get('error') or 'no message'))}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("Prometheus answered success without data", kind="bad-answer")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result)
    if kind != "vector" or not isinstance(result, list):
        raise PrometheusError(f"Prometheus answered a {_excerpt(str(kind))}, not a vector", kind="bad-answer")
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(f"Prometheus answered {len(result)} series where one (a sum) was expected",
                              kind="bad-answer")
    sample = result[0]
    return _number(sample.get("value") if isinstance(sample, dict) else None)


def _number(pair) -> float | None:
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise PrometheusError("Prometheus answered a sample that is not [time, \"value\"]", kind="bad-answer")
    try:
        value = float(pair[1])
    except ValueError:
        raise PrometheusError(f"Prometheus answered a value that is not a number: {_excerpt(pair[1])!r}",
                              kind="bad-answer") from None
    return None if math.isnan(value) else value


def _excerpt(text: str, limit: int = 200) -> str:
    """Untrusted text, shortened and without control characters, for a one-line message."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
