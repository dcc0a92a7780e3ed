"""A traffic simulator for canary tests: Istio's request metrics without Envoy.

    sim = TrafficSimulator(kubeconfig, rps=100, error_rates={"v2": 0.2}, latencies={"v2": 800}).start()
    prometheus scrapes http://{sim.address}/metrics
    sim.stop()

It reads the cluster's Services, pods, VirtualServices and DestinationRules from the API
server every ``refresh`` seconds, sends ``rps`` simulated requests a second to each Service
(split by the current weights, see ``routing``), and counts each one the way Istio's
telemetry does: ``istio_requests_total`` and ``istio_request_duration_milliseconds``
(Istio's default buckets), reported by the destination and by the source, with Istio's
standard labels. A version's error rate is the fraction of its requests answered 500; its
latency (milliseconds) is drawn between half and all of the value set (default 20 ms).
``python -m tests.traffic --help`` runs it by hand.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter as Tally
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from .kube import ApiReader
from .routing import Backend, ServiceRoute, route_table

# Istio's default buckets for istio_request_duration_milliseconds.
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
           1800000, 3600000)
LABELS = ("reporter", "source_workload", "source_workload_namespace", "source_principal", "destination_workload",
          "destination_workload_namespace", "destination_service", "destination_service_name",
          "destination_service_namespace", "destination_version", "request_protocol", "response_code",
          "response_flags", "connection_security_policy")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "istio-system")
DEFAULT_LATENCY_MS = 20.0
SOURCE = ("loadgen", "loadgen")  # (workload, namespace) of the simulated client


class TrafficSimulator:
    def __init__(self, kubeconfig: str | Path, *, rps: float = 50.0, error_rates: dict[str, float] | None = None,
                 latencies: dict[str, float] | None = None, services: list[str] | None = None,
                 listen: str = "127.0.0.1:0", refresh: float = 0.5, seed: int = 0, tick: float = 0.1) -> None:
        self.api = ApiReader(kubeconfig)
        self.rps = float(rps)
        self.error_rates = dict(error_rates or {})
        self.latencies = dict(latencies or {})
        self.services = set(services or [])  # "ns/name"; empty: every Service outside system namespaces
        host, _, port = listen.rpartition(":")
        self.listen = (host or "127.0.0.1", int(port or 0))
        self.refresh = refresh
        self.tick = tick
        self.random = random.Random(seed)
        self.registry = CollectorRegistry()
        self.requests = Counter("istio_requests_total", "Simulated Istio requests", LABELS, registry=self.registry)
        self.durations = Histogram("istio_request_duration_milliseconds", "Simulated request durations", LABELS,
                                   buckets=BUCKETS, registry=self.registry)
        self.sent: Tally = Tally()  # (service, version, response_code) -> requests, for tests
        self.table: list[ServiceRoute] = []
        self.refreshed = threading.Event()
        self.read_errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._server = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> TrafficSimulator:
        self._server, _ = start_http_server(self.listen[1], addr=self.listen[0], registry=self.registry)
        self.read_routes()
        for target, name in ((self._refresh_loop, "traffic-routes"), (self._send_loop, "traffic-send")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TrafficSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.listen[0]}:{self._server.server_port}" if self._server else ""

    # -- settings a test changes while it runs --------------------------------------------
    def set(self, *, rps: float | None = None, error_rates: dict[str, float] | None = None,
            latencies: dict[str, float] | None = None) -> None:
        with self._lock:
            if rps is not None:
                self.rps = float(rps)
            if error_rates is not None:
                self.error_rates = dict(error_rates)
            if latencies is not None:
                self.latencies = dict(latencies)

    # -- routes -------------------------------------------------------------------------
    def read_routes(self) -> None:
        objects = self.api.objects()
        table = [r for r in route_table(**objects) if self._wanted(r)]
        with self._lock:
            self.table = table
        self.refreshed.set()

    def _wanted(self, route: ServiceRoute) -> bool:
        if self.services:
            return f"{route.namespace}/{route.name}" in self.services
        return route.namespace not in SYSTEM_NAMESPACES

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh):
            try:
                self.read_routes()
            except Exception as e:  # noqa: BLE001 - keep the last table; the API server may be slow or gone
                self.read_errors += 1
                if self.read_errors == 1:
                    print(f"tests.traffic: reading routes failed, keeping the last ones: {e}", file=sys.stderr)

    def shares(self, namespace: str, service: str) -> dict[str | None, float]:
        """The current split of a Service's requests by subset (for tests)."""
        with self._lock:
            for route in self.table:
                if (route.namespace, route.name) == (namespace, service):
                    return {d.subset: d.share for d in route.destinations}
        return {}

    # -- requests -----------------------------------------------------------------------
    def _send_loop(self) -> None:
        budget: dict[tuple[str, str], float] = {}
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            elapsed, last = min(now - last, 1.0), now
            with self._lock:
                table, rps = list(self.table), self.rps
            for route in table:
                key = (route.namespace, route.name)
                budget[key] = budget.get(key, 0.0) + rps * elapsed
                count = int(budget[key])
                budget[key] -= count
                for _ in range(count):
                    self._one(route)

    def _one(self, route: ServiceRoute) -> None:
        pick = self.random.random()
        chosen = None
        for destination in route.destinations:
            pick -= destination.share
            if pick < 0:
                chosen = destination
                break
        if chosen is None:
            if not route.destinations:
                return
            chosen = route.destinations[-1]
        if not chosen.backends:  # no healthy upstream: the client's sidecar answers 503
            self._count(route, None, "503", "UH", 0.5 + self.random.random(), ("source",))
            return
        backend = self.random.choice(chosen.backends)
        with self._lock:
            error_rate = self.error_rates.get(backend.version, 0.0)
            latency = self.latencies.get(backend.version, DEFAULT_LATENCY_MS)
        code = "500" if self.random.random() < error_rate else "200"
        self._count(route, backend, code, "-", latency * (0.5 + 0.5 * self.random.random()),
                    ("destination", "source"))

    def _count(self, route: ServiceRoute, backend: Backend | None, code: str, flags: str, millis: float,
               reporters: tuple[str, ...]) -> None:
        for reporter in reporters:
            labels = {
                "reporter": reporter,
                "source_workload": SOURCE[0], "source_workload_namespace": SOURCE[1],
                "source_principal": f"spiffe://cluster.local/ns/{SOURCE[1]}/sa/{SOURCE[0]}",
                "destination_workload": backend.workload if backend else "unknown",
                "destination_workload_namespace": backend.namespace if backend else "unknown",
                "destination_service": route.host,
                "destination_service_name": route.name,
                "destination_service_namespace": route.namespace,
                "destination_version": backend.version if backend else "unknown",
                "request_protocol": "http",
                "response_code": code,
                "response_flags": flags,
                "connection_security_policy": "mutual_tls" if reporter == "destination" else "unknown",
            }
            self.requests.labels(**labels).inc()
            self.durations.labels(**labels).observe(millis)
        with self._lock:
            self.sent[(route.name, backend.version if backend else "unknown", code)] += 1
