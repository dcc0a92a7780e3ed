"""pytest fixtures for the local test API server.

Use them from a conftest or test module::

    from tests.cluster.fixtures import kubeconfig, kubectl, test_cluster  # noqa: F401

or ``pytest_plugins = ["tests.cluster.fixtures"]`` in a top-level conftest. Options of the
server come from ``@pytest.mark.cluster(native_sidecars=True, ready_after=2.0, ...)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .cluster import TestCluster


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker when this module is loaded as a plugin (``pytest_plugins``)."""
    config.addinivalue_line("markers", "cluster(**kwargs): options of the local test API server")


@pytest.fixture
def test_cluster(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    """A fresh, started TestCluster per test (options from ``@pytest.mark.cluster(...)``)."""
    marker = request.node.get_closest_marker("cluster")
    cluster = TestCluster(**(marker.kwargs if marker else {})).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_factory() -> Iterator[Callable[..., TestCluster]]:
    """Start extra clusters with any options: ``cluster_factory(native_sidecars=True)``;
    all are stopped after the test."""
    started: list[TestCluster] = []

    def make(**options) -> TestCluster:
        cluster = TestCluster(**options).start()
        started.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()


@pytest.fixture
def kubeconfig(test_cluster: TestCluster, tmp_path: Path) -> Path:
    """Path of a kubeconfig for ``test_cluster`` (context, cluster and user named ``test``)."""
    return test_cluster.write_kubeconfig(tmp_path / "kubeconfig", context="test")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real kubectl against ``test_cluster``: ``kubectl("get", "pods", input=None)``.

    The discovery cache goes to a per-test directory, so runs never share or pollute ``~/.kube``.
    """
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl not found on PATH: these tests drive the real kubectl binary", pytrace=False)
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(tmp_path / "kube-cache"),
               HOME=str(tmp_path / "home"))

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([binary, *args], input=input, capture_output=True, text=True, env=env,
                              timeout=timeout)

    return run
