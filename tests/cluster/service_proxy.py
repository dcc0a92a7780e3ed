"""The API server's service proxy: ``/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH``.

kube-apiserver resolves the Service and its port, picks an endpoint and forwards the request
(method, path after ``/proxy``, query, body), passing the upstream answer back unchanged:
status code, Content-Type and body. The test server has no pod network, so a Service port is
mapped to a loopback address by hand::

    from tests.cluster.service_proxy import proxy_service
    proxy_service(cluster, "istio-system", "prometheus", 9090, "127.0.0.1:19090")

or ``python -m tests.cluster --service-proxy istio-system/prometheus:9090=127.0.0.1:19090``.
Mapping a Service that does not exist creates it (one TCP port, named ``http``), so a client
can discover it as it would a real Prometheus.

Errors are kube-apiserver's (``pkg/registry/core/service/storage``): a missing Service is 404
NotFound; a port the Service does not have is 503 ``no service port "x" found for service
"y"``; a port with no mapped address is 503 ``no endpoints available for service "y"``; a
refused or timed-out connection is 503 ``error trying to reach service: dial tcp ...``.
The request is authorized like every other one: ``get`` (``create`` for POST, ...) on
``services/proxy`` in the Service's namespace, the proxied name being ``NAME:PORT`` as written.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import errors
from .errors import ApiError

if TYPE_CHECKING:
    from .cluster import TestCluster
    from .handler import ApiHandler

# The verb a proxied request is authorized as, by HTTP method (Kubernetes' RequestInfo).
VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
UPSTREAM_TIMEOUT = 30.0
MAX_BODY = 32 << 20
_SPEC = re.compile(r"^(?P<ns>[a-z0-9-]+)/(?P<name>[a-z0-9-]+):(?P<port>\d+)=(?P<host>127\.[0-9.]+|localhost):(?P<to>\d+)$")
_FORWARDED_HEADERS = ("Accept", "Content-Type", "User-Agent")
_MADE = threading.Lock()


@dataclass(frozen=True)
class Proxied:
    """A parsed proxy path: the Service, the port as written (name or number), the rest."""

    namespace: str
    service: str
    port: str
    written: str  # the path segment as the client wrote it ([scheme:]name[:port])
    path: str


class ServiceProxies:
    """(namespace, service, port number) -> loopback (host, port)."""

    def __init__(self) -> None:
        self._targets: dict[tuple[str, str, int], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, namespace: str, service: str, port: int, address: str) -> None:
        host, _, to = address.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
            raise ValueError(f"service proxy target {address!r} is not a loopback address")
        with self._lock:
            self._targets[(namespace, service, int(port))] = (host, int(to))

    def remove(self, namespace: str, service: str, port: int) -> None:
        with self._lock:
            self._targets.pop((namespace, service, int(port)), None)

    def target(self, namespace: str, service: str, port: int) -> tuple[str, int] | None:
        with self._lock:
            return self._targets.get((namespace, service, port))


def proxies(cluster: TestCluster) -> ServiceProxies:
    """The cluster's proxy table, made on first use (so TestCluster itself needs no change)."""
    with _MADE:
        found = cluster.__dict__.get("_service_proxies")
        if found is None:
            found = cluster.__dict__["_service_proxies"] = ServiceProxies()
        return found


def parse_spec(spec: str) -> tuple[str, str, int, str]:
    """``NS/NAME:PORT=HOST:PORT`` -> (namespace, service, port, "host:port")."""
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"--service-proxy {spec!r}: expected NS/NAME:PORT=127.0.0.1:PORT")
    return match["ns"], match["name"], int(match["port"]), f"{match['host']}:{match['to']}"


def proxy_service(cluster: TestCluster, namespace: str, service: str, port: int, address: str) -> None:
    """Route ``services/SERVICE:PORT/proxy`` of NAMESPACE to ADDRESS (creating the Service if needed)."""
    proxies(cluster).add(namespace, service, port, address)
    if cluster.get("namespaces", None, namespace) is None:
        cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if cluster.get("services", namespace, service) is None:
        cluster.create({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service, "namespace": namespace, "labels": {"app": service}},
            "spec": {"selector": {"app": service},
                     "ports": [{"name": "http", "port": int(port), "protocol": "TCP"}]},
        })


def match(parts: list[str]) -> Proxied | None:
    """The proxy request in a split path, or None for any other path."""
    if len(parts) < 6 or parts[:3] != ["api", "v1", "namespaces"] or parts[3:4] == [""]:
        return None
    if parts[4] != "services" or parts[6:7] != ["proxy"]:
        return None
    written = parts[5]
    pieces = written.split(":")
    if pieces[0] in ("http", "https") and len(pieces) > 1:
        pieces = pieces[1:]
    service = pieces[0]
    port = pieces[1] if len(pieces) > 1 else ""
    return Proxied(parts[3], service, port, written, "/" + "/".join(parts[7:]))


def serve(handler: ApiHandler, cluster: TestCluster, method: str, proxied: Proxied, raw: bytes) -> None:
    """Authorize, resolve and forward one proxied request; answer what the upstream answered."""
    from .handler import Route  # the handler imports this module

    rt = cluster.core.registry.for_gv("", "v1", "services")
    verb = VERBS.get(method)
    if verb is None:
        raise errors.method_not_allowed()
    record = handler._record
    record.verb, record.resource, record.subresource = verb, "services", "proxy"
    record.namespace, record.name = proxied.namespace, proxied.written
    handler._faults(cluster, Route("", "v1", rt, proxied.namespace, proxied.written, "proxy"), verb)

    service = cluster.get("services", proxied.namespace, proxied.service)
    if service is None:
        raise errors.not_found("services", "", proxied.service)
    number = _port_number(service, proxied)
    target = proxies(cluster).target(proxied.namespace, proxied.service, number)
    if target is None:
        raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{proxied.service}"')
    query = urlsplit(handler.path).query
    status, content_type, body = _forward(target, method, proxied.path + (f"?{query}" if query else ""), raw,
                                          {h: handler.headers[h] for h in _FORWARDED_HEADERS if handler.headers[h]})
    handler._send(status, body, content_type=content_type)


def _port_number(service: dict, proxied: Proxied) -> int:
    ports = (service.get("spec") or {}).get("ports") or []
    for entry in ports:
        if not proxied.port or proxied.port in (entry.get("name"), str(entry.get("port"))):
            return int(entry["port"])
    raise ApiError(503, "ServiceUnavailable",
                   f'no service port "{proxied.port}" found for service "{proxied.service}"')


def _forward(target: tuple[str, int], method: str, path: str, body: bytes,
             headers: dict[str, str]) -> tuple[int, str, bytes]:
    host, port = target
    connection = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read(MAX_BODY)
        return response.status, response.getheader("Content-Type") or "text/plain", data
    except ConnectionRefusedError:
        raise _unreachable(host, port, "connect: connection refused") from None
    except TimeoutError:
        raise _unreachable(host, port, "i/o timeout") from None
    except (OSError, http.client.HTTPException) as e:
        raise _unreachable(host, port, f"read: {e}") from None
    finally:
        connection.close()


def _unreachable(host: str, port: int, why: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {host}:{port}: {why}")
