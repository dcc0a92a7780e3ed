"""Faults end to end, through the real kubectl against the test API server: a slow
server, lost answers, failing restarts, conflicts, a hanging credential plugin,
and backups that must be kept safe and point at the right cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from tests.e2e.test_policy import APP, SET, _ok, _weights

VS = "virtualservices.networking.istio.io"


def _canary_at_20(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    _ok(mesh(*SET, "--weight", "20"))
    assert _weights(kubectl) == {"stable": 80, "canary": 20}


def test_a_promote_whose_answer_is_lost_and_lands_later_is_not_stepped_twice(e2e, kubectl, mesh):
    """The issue's case: the patch is held by a slow server past --timeout, so its answer
    is lost; it lands later. The command says the outcome is not known, keeps the
    backup, and running it again converges instead of moving traffic a second time."""
    _canary_at_20(e2e, kubectl, mesh)
    e2e.cluster.add_latency(8, verb="patch", resource=VS, count=1)
    started = time.monotonic()
    lost = mesh("canary", "promote", "my-app", "-n", "my-app", "--timeout", "4s", "-o", "json")
    assert lost.returncode == 4, lost.stderr
    assert time.monotonic() - started < 8  # bounded by --timeout, not by the server
    doc = json.loads(lost.stdout)
    step = doc["plan"][-1]
    assert step["status"] == "failed" and step["outcome"] == "unknown" and "may still land" in step["reason"]
    assert Path(step["backup"]).is_file()  # it may land: the backup stays
    for _ in range(100):  # the held patch lands (it carries the version read, which nobody changed)
        if _weights(kubectl) != {"stable": 80, "canary": 20}:
            break
        time.sleep(0.1)
    assert _weights(kubectl) == {"stable": 70, "canary": 30}
    again = _ok(mesh("canary", "promote", "my-app", "-n", "my-app"))
    assert "whose answer was lost, had landed: nothing more to do" in again.stdout
    assert "[unchanged]" in again.stdout
    assert _weights(kubectl) == {"stable": 70, "canary": 30}  # one step, not two
    then = _ok(mesh("canary", "promote", "my-app", "-n", "my-app"))  # the next promote steps again
    assert _weights(kubectl) == {"stable": 60, "canary": 40}, then.stdout


def test_a_promote_whose_answer_is_lost_and_never_lands_is_completed_by_the_rerun(e2e, kubectl, mesh):
    _canary_at_20(e2e, kubectl, mesh)
    e2e.cluster.add_latency(8, verb="patch", resource=VS, count=1)
    lost = mesh("canary", "promote", "my-app", "-n", "my-app", "--timeout", "4s")
    assert lost.returncode == 4
    assert "may be changed: virtualservice/my-app (its backup is kept" in lost.stdout
    # Someone else changes the route before the held patch lands: it then conflicts and never lands.
    vs = json.loads(kubectl("get", VS, "my-app", "-n", "my-app", "-o", "json").stdout)
    vs["metadata"].setdefault("labels", {})["touched"] = "yes"
    kubectl("replace", "-f", "-", input=json.dumps(vs))
    time.sleep(6)  # past the held patch: it found another version and was refused
    assert _weights(kubectl) == {"stable": 80, "canary": 20}
    _ok(mesh("canary", "promote", "my-app", "-n", "my-app"))
    assert _weights(kubectl) == {"stable": 70, "canary": 30}


def test_a_dropped_connection_on_a_write_is_read_again_and_tried_again_once(e2e, kubectl, mesh):
    _canary_at_20(e2e, kubectl, mesh)
    e2e.cluster.drop_connections(1, verb="patch", resource=VS)
    result = _ok(mesh("canary", "promote", "my-app", "-n", "my-app"))
    assert "it did not land, trying again" in result.stderr
    assert _weights(kubectl) == {"stable": 70, "canary": 30}


def test_a_slow_api_server_is_bounded_by_timeout_with_the_real_bound_named(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    e2e.cluster.add_latency(60, verb="list")
    started = time.monotonic()
    result = mesh("verify", "my-app", "--no-istioctl", "--timeout", "3s")
    elapsed = time.monotonic() - started
    assert result.returncode == 4
    assert elapsed < 8, elapsed
    assert "what was left of --timeout 3s" in result.stderr or "Client.Timeout" in result.stderr \
        or "--request-timeout" in result.stderr or "context deadline exceeded" in result.stderr.lower() \
        or "timed out" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the namespace line at most, then one error line


def test_a_hanging_exec_credential_plugin_is_killed_with_kubectl(e2e, mesh, tmp_path):
    """kubectl runs the plugin and waits for it; the plugin holds kubectl's pipes. The whole
    process group goes at the deadline, so the command ends then, not when the plugin does."""
    plugin = tmp_path / "hanging-credentials"
    pidfile = tmp_path / "plugin.pid"
    plugin.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    plugin.chmod(0o755)
    config = yaml.safe_load(e2e.kubeconfig.read_text())
    config["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                           "interactiveMode": "Never"}}
    hanging = tmp_path / "kubeconfig-hanging"
    hanging.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    result = mesh("status", "my-app", "--kubeconfig", str(hanging), "--timeout", "3s")
    assert result.returncode == 4, result.stderr
    assert time.monotonic() - started < 10
    assert "what was left of --timeout 3s" in result.stderr
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower():
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the credential plugin outlived the command")


def test_restart_failing_with_503_is_retried_then_succeeds(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP.replace("istio-injection: enabled", "team: a"))
    e2e.cluster.fail(503, verb="patch", resource="deployments.apps", count=1,
                     message="the server is currently unable to handle the request")
    result = _ok(mesh("enable", "my-app", "--no-istioctl", "-o", "json"))
    assert [s["status"] for s in json.loads(result.stdout)["plan"]] == ["applied", "applied", "applied"]


def test_restart_that_keeps_failing_is_exit_4_with_what_was_done(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP.replace("istio-injection: enabled", "team: a"))
    e2e.cluster.fail(500, verb="patch", resource="deployments.apps", count=None)
    result = mesh("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.returncode == 4, result.stderr
    doc = json.loads(result.stdout)
    assert doc["error"]["type"] == "RestartFailed" and "kept failing (5 attempts)" in doc["error"]["message"]
    assert [s["status"] for s in doc["plan"]] == ["applied", "failed", "failed"]
    assert any(n.startswith("changed before the error: namespace/my-app (to undo: kubectl --context test ")
               for n in doc.get("notes", [])) or "namespace/my-app" in result.stdout


def test_conflicts_that_never_stop_are_exit_4(e2e, kubectl, mesh):
    _canary_at_20(e2e, kubectl, mesh)
    e2e.cluster.conflict_next_write(VS, count=50)
    result = mesh("canary", "promote", "my-app", "-n", "my-app")
    assert result.returncode == 4
    assert "gave up after 5 attempts, nothing was overwritten" in result.stderr
    assert _weights(kubectl) == {"stable": 80, "canary": 20}


def test_restore_names_the_context_even_when_none_was_given(e2e, kubectl, mesh):
    _canary_at_20(e2e, kubectl, mesh)
    result = _ok(mesh("canary", "promote", "my-app", "-n", "my-app", "-o", "json"))
    step = json.loads(result.stdout)["plan"][-1]
    assert step["restore"].startswith("kubectl --context test replace -f ")
    port = e2e.cluster.url.rsplit(":", 1)[1]
    assert f"/backups/test@127.0.0.1_{port}/my-app/" in step["backup"]
    # the restore puts it back, on that cluster, even after the current context changed
    kubectl("config", "set-context", "elsewhere", "--cluster", "nowhere")
    kubectl("config", "use-context", "elsewhere")
    restored = __import__("subprocess").run(step["restore"], shell=True, capture_output=True, text=True, env=e2e.env)
    assert restored.returncode == 0, restored.stderr
    kubectl("config", "use-context", "test")
    assert _weights(kubectl) == {"stable": 80, "canary": 20}


def test_an_unusable_state_dir_is_one_line_exit_4_before_any_write(e2e, kubectl, mesh, tmp_path):
    kubectl("apply", "-f", "-", input=APP)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = mesh("mtls", "my-app", "permissive", env={"KUBECTL_MESH_STATE_DIR": str(blocker / "state")})
    assert result.returncode == 4
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot keep backups in {blocker / 'state'}: ")
    assert "nothing was changed" in result.stderr
    listed = json.loads(kubectl("get", "peerauthentications.security.istio.io", "-n", "my-app", "-o", "json").stdout)
    assert listed["items"] == []
