"""End-to-end fixtures: the local test API server, the real kubectl, and the
installed `kubectl-mesh` found by kubectl on PATH, run as users run it.

Markers:
  @pytest.mark.cluster(**kwargs)  TestCluster options (native_sidecars, ready_after, istio_installed, ...)
  @pytest.mark.no_istioctl        no istioctl on PATH at all (default: the replaying stand-in)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.cluster import TestCluster
from tests.schema import assert_valid, output_format

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster(**kwargs): options of the local test API server")
    config.addinivalue_line("markers", "no_istioctl: run with no istioctl on PATH")
    config.addinivalue_line("markers", "traffic(**kwargs): options of the traffic simulator (canary run)")


@dataclass
class E2E:
    cluster: TestCluster
    env: dict
    kubeconfig: Path
    istioctl_log: Path
    tmp: Path

    def istioctl_calls(self) -> list[list[str]]:
        if not self.istioctl_log.exists():
            return []
        return [json.loads(line) for line in self.istioctl_log.read_text().splitlines()]


def _kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found on PATH: the end-to-end tests drive the real kubectl binary; "
                    "install kubectl (https://kubernetes.io/docs/tasks/tools/)", pytrace=False)
    return found


def _plugin_dir() -> Path:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "kubectl-mesh").exists():
        pytest.fail(f"kubectl-mesh is not installed next to {sys.executable}; run ./install.sh --dev",
                    pytrace=False)
    return bin_dir


@pytest.fixture
def e2e(request, tmp_path) -> E2E:
    kubectl = _kubectl_binary()
    marker = request.node.get_closest_marker("cluster")
    cluster = TestCluster(**(marker.kwargs if marker else {})).start()
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    tools = tmp_path / "bin"
    tools.mkdir()
    if request.node.get_closest_marker("no_istioctl") is None:
        standin = tools / "istioctl"
        standin.write_text(f"#!{sys.executable}\n" + (HERE / "istioctl_standin.py").read_text())
        standin.chmod(0o755)
    # A PATH with only what users would have: the plugin, kubectl, the stand-in, the shell's basics.
    path = os.pathsep.join(dict.fromkeys([str(tools), str(_plugin_dir()), str(Path(kubectl).parent), "/usr/bin",
                                          "/bin"]))
    env = {
        "PATH": path,
        "HOME": str(tmp_path / "home"),
        "KUBECONFIG": str(kubeconfig),
        "KUBECTL_MESH_STATE_DIR": str(tmp_path / "state"),
        "ISTIOCTL_STANDIN_LOG": str(tmp_path / "istioctl.log"),
        "ISTIOCTL_STANDIN_DATA": str(HERE.parent / "data" / "istioctl"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    if request.node.get_closest_marker("no_istioctl") is not None and shutil.which("istioctl", path=path):
        pytest.fail("an istioctl is on the e2e PATH although the test wants none", pytrace=False)
    yield E2E(cluster, env, kubeconfig, tmp_path / "istioctl.log", tmp_path)
    cluster.stop()


@pytest.fixture
def cluster(e2e) -> TestCluster:
    return e2e.cluster


@pytest.fixture
def kubectl(e2e):
    """Run the real kubectl against the test cluster."""

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=e2e.env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    return run


@pytest.fixture
def mesh(e2e):
    """Run `kubectl mesh ARGS` exactly as a user does: through the real kubectl. Whenever the
    arguments ask for -o json or -o yaml, the document printed is checked against the published
    schema (docs/schema/), so every scenario, present and future, checks the JSON it sees."""

    def run(*args: str, input: str | None = None, timeout: float = 120, env: dict | None = None):
        result = subprocess.run(["kubectl", "mesh", *args], input=input, capture_output=True, text=True,
                                env={**e2e.env, **(env or {})}, timeout=timeout)
        check_document(args, result)
        return result

    return run


# The `command` of every document the e2e scenarios validated (tests/e2e/test_runbook_contract.py
# checks that its scenario validates every command the CLI has).
VALIDATED: list[str] = []


def check_document(args, result) -> None:
    output = output_format(args)
    if output is None or "-h" in args or "--help" in args or (args and args[0] == "completion"):
        return
    where = f"`kubectl mesh {' '.join(args)}` (exit {result.returncode})"
    assert result.stdout.strip(), f"{where} printed no {output} document on stdout; stderr: {result.stderr}"
    try:
        document = json.loads(result.stdout) if output == "json" else yaml.safe_load(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"{where} printed something that is not {output}: {exc}\n{result.stdout[:2000]}") \
            from None
    assert_valid(document, where)
    VALIDATED.append(document.get("command", ""))


@pytest.fixture
def mesh_popen(e2e):
    """Start `kubectl mesh ARGS` in its own process group (for interrupt tests)."""

    def start(*args: str):
        return subprocess.Popen(["kubectl", "mesh", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=e2e.env, start_new_session=True, preexec_fn=_default_sigint)

    return start


def _default_sigint() -> None:
    """SIGINT back to its default in the child. A suite started as a background job of a
    non-interactive shell inherits SIGINT ignored, and kubectl and Python keep an inherited
    SIG_IGN (as POSIX tools should: that is how the shell protects its background jobs), so an
    interrupt test would otherwise send a signal the plugin never sees."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
