"""The way to STRICT mTLS, through the real kubectl: PERMISSIVE first is advised before STRICT
is written (a refusal, a warning with --force), STRICT -> PERMISSIVE says what it weakens, and
the fix given for an opted-out pod works when run as printed."""

from __future__ import annotations

import json
import shlex
import time

from tests.e2e.manifests import documents, namespace, workload

APP = documents(namespace("my-app"), workload("web", "my-app"))
# opted out of injection on its pods
LEGACY = workload("legacy", "my-app", pod_labels={"app": "legacy", "sidecar.istio.io/inject": "false"})
DISABLED = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: my-app}
spec: {mtls: {mode: DISABLE}}
"""


def _mode(e2e):
    policy = e2e.cluster.get("peerauthentications", "my-app", "default")
    return policy and policy["spec"]["mtls"]["mode"]


def test_the_fix_for_an_opted_out_pod_works_as_printed(e2e, kubectl, mesh):
    e2e.cluster.load(documents(APP, LEGACY))
    refused = mesh("mtls", "my-app", "strict", "-o", "json")
    assert refused.returncode == 3
    (check,) = json.loads(refused.stdout)["refusedBy"]
    assert check["id"] == "sidecars" and "deployment/legacy" in check["message"]
    assert "delete" not in check["hint"] and "recreate" not in check["hint"] and "restart" not in check["hint"]
    fix = check["hint"].split("which rolls it out with a sidecar: ", 1)[1]
    argv = shlex.split(fix)
    assert argv[:3] == ["kubectl", "patch", "deployment/legacy"], fix
    kubectl(*argv[1:])
    kubectl("rollout", "status", "deployment/legacy", "-n", "my-app", "--timeout=60s")
    deadline = time.monotonic() + 30
    while (result := mesh("mtls", "my-app", "strict")).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.5)  # the old pod may still be going away
    assert result.returncode == 0, result.stdout + result.stderr
    assert _mode(e2e) == "STRICT"
    assert mesh("verify", "my-app", "--no-istioctl").returncode == 0


def test_permissive_first_is_advised_before_strict_is_written(e2e, kubectl, mesh):
    e2e.cluster.load(documents(APP, DISABLED))
    writes = len(e2e.cluster.requests.writes())
    refused = mesh("mtls", "my-app", "strict")
    assert refused.returncode == 3
    assert ("✗ current mode is DISABLE (PeerAuthentication my-app/default (namespace-wide)): going straight to "
            "STRICT cuts off every client at once, with no time to move to mTLS") in refused.stdout
    assert "    go through PERMISSIVE first: kubectl mesh mtls my-app permissive, check traffic" in refused.stdout
    assert len(e2e.cluster.requests.writes()) == writes and _mode(e2e) == "DISABLE"

    planned = mesh("mtls", "my-app", "strict", "--force", "--dry-run")
    assert planned.returncode == 0
    assert "! current mode is DISABLE" in planned.stdout and "[planned]" in planned.stdout
    assert planned.stdout.index("Plan:") < planned.stdout.index("! current mode is DISABLE")

    assert mesh("mtls", "my-app", "permissive").returncode == 0 and _mode(e2e) == "PERMISSIVE"
    assert mesh("mtls", "my-app", "strict").returncode == 0 and _mode(e2e) == "STRICT"
    back = mesh("mtls", "my-app", "permissive", "-o", "json")
    assert back.returncode == 0 and _mode(e2e) == "PERMISSIVE"
    (weakens,) = [c for c in json.loads(back.stdout)["checks"] if c["id"] == "weakens"]
    assert weakens["result"] == "warn"
    assert weakens["message"].startswith("STRICT -> PERMISSIVE weakens my-app: its pods accept plain-text "
                                         "connections again")
