"""A real Prometheus server for tests (Debian's ``prometheus`` package, 2.42 on CI).

    with PrometheusServer(tmp_path, targets=["127.0.0.1:9101"]) as prom:
        prom.wait_for_series('istio_requests_total')
        prom.query("sum(istio_requests_total)")

It listens on 127.0.0.1 (a free port), scrapes its targets every second and keeps its data
in the given directory. The pytest fixture ``prometheus_factory`` starts servers and stops
them after the test. A missing binary fails the test with the install command: CI must run
these tests, never skip them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BINARY = "prometheus"
INSTALL_HINT = ("the prometheus binary is not on PATH; install Debian's package: "
                "apt-get install -y --no-install-recommends prometheus (.ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(targets: list[str], scrape_interval: str) -> str:
    """prometheus.yml: one job scraping the simulator's /metrics (JSON is valid YAML)."""
    return json.dumps({
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "scrape_configs": [{"job_name": "istio-mesh", "static_configs": [{"targets": list(targets)}]}],
    }, indent=2)


class PrometheusServer:
    __test__ = False

    def __init__(self, directory: Path, targets: list[str], scrape_interval: str = "1s",
                 port: int | None = None) -> None:
        self.directory = Path(directory)
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.directory / "prometheus.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        binary = shutil.which(BINARY)
        if binary is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        config.write_text(config_text(self.targets, self.scrape_interval))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
                 f"--web.listen-address={self.address}", "--log.level=warn",
                 "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log()}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout:g}s:\n{self.log()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- reading it, for tests ---------------------------------------------------------
    def query(self, promql: str) -> list[dict]:
        """The result of an instant query (the API's ``data.result``)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as answer:
            doc = json.load(answer)
        if doc.get("status") != "success":
            raise RuntimeError(f"prometheus: {doc}")
        return doc["data"]["result"]

    def wait_for(self, promql: str, predicate: Callable[[list[dict]], bool] = bool, timeout: float = 30.0) -> list:
        """Poll an instant query until `predicate(result)` holds (the state observed, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if predicate(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"prometheus: {promql!r} still {result!r} after {timeout:g}s")

    def wait_for_scrape(self, timeout: float = 30.0) -> None:
        """Every target scraped successfully at least once."""
        self.wait_for('up{job="istio-mesh"} == 1', lambda r: len(r) == len(self.targets), timeout)


@pytest.fixture
def prometheus_factory(tmp_path) -> Iterator[Callable[..., PrometheusServer]]:
    """``prometheus_factory(targets=["127.0.0.1:PORT"])``: a started server, stopped after the test."""
    started: list[PrometheusServer] = []

    def make(targets: list[str], scrape_interval: str = "1s") -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", targets, scrape_interval)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in started:
            server.stop()
