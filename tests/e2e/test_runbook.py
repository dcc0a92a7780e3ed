"""examples/runbook.sh end to end: a `set -euo pipefail` runbook whose gates are one Python
one-liner each over documented JSON paths, through the real kubectl against the test API server."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.test_runbook_contract import APP

RUNBOOK = Path(__file__).resolve().parents[2] / "examples" / "runbook.sh"


def _run(e2e, soak: str = "0", timeout: float = 600):
    return subprocess.Popen(["bash", str(RUNBOOK), "my-app", "my-app", "v1", "v2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**e2e.env, "SOAK": soak})


def _weights(cluster):
    vs = cluster.get("virtualservices", "my-app", "my-app")
    route = next(r for r in vs["spec"]["http"] if not r.get("match"))
    return {d["destination"]["subset"]: d["weight"] for d in route["route"]}


def test_the_runbook_takes_a_namespace_from_nothing_to_a_finished_canary(e2e, kubectl):
    e2e.cluster.load(APP, inject=False)
    process = _run(e2e)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{out}\n{err}"
    steps = [line for line in err.splitlines() if line.startswith("runbook: ")]
    assert steps[0] == "runbook: 1. enable injection in my-app and restart what lacks the proxy"
    assert steps[-1] == "runbook: done"
    assert "Namespace my-app" in out and "STRICT" in out  # the final status screen
    rule = e2e.cluster.get("destinationrules", "my-app", "my-app")
    assert rule["spec"]["subsets"] == [{"name": "stable", "labels": {"version": "v2"}}]
    assert rule["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] == 5
    assert _weights(e2e.cluster) == {"stable": 100}
    policy = e2e.cluster.get("peerauthentications", "my-app", "default")
    assert policy["spec"]["mtls"]["mode"] == "STRICT"
    print(err)  # the runbook's progress, for the record (pytest -s)


def test_a_failed_gate_rolls_the_canary_back_and_stops(e2e, kubectl):
    """The canary's pods go away while the 10% step soaks: verify's canary-health gate fails,
    the runbook sends all traffic back to stable and exits non-zero."""
    e2e.cluster.load(APP, inject=False)
    process = _run(e2e, soak="6")
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any("4. canary v2 at 10%" in line for line in stderr):
        time.sleep(0.2)
    while time.monotonic() < deadline:
        vs = e2e.cluster.get("virtualservices", "my-app", "my-app")
        if vs is not None and _weights(e2e.cluster).get("canary") == 10:
            break
        time.sleep(0.2)
    kubectl("scale", "deployment", "my-app-v2", "-n", "my-app", "--replicas=0")
    out = process.stdout.read()  # stderr is the reader thread's alone
    process.wait(timeout=300)
    reader.join(timeout=30)
    text = "".join(stderr)
    assert process.returncode == 1, f"{out}\n{text}"
    assert "runbook: step failed (exit 1): sending all traffic back to v1" in text
    assert _weights(e2e.cluster) == {"stable": 100, "canary": 0}
    assert "5. canary at 50%" not in text
    assert json.loads(kubectl("get", "deployment", "my-app-v2", "-n", "my-app", "-o", "json").stdout)[
        "spec"]["replicas"] == 0
