"""The tool runner: argument lists, connection flags, dry run, echo, typed errors."""

from __future__ import annotations

import io
import os
import stat
import time

import pytest

from kubectl_mesh import errors
from kubectl_mesh.runner import Runner, classify_failure, first_error_line

# Messages as real kubectl prints them.
REFUSED = (
    'E1125 20:39:35.466050    5300 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group '
    'list: Get \\"http://127.0.0.1:1/api?timeout=32s\\": dial tcp 127.0.0.1:1: connect: connection refused"\n'
    "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
)
CASES = [
    ("error: stat /nonexistent: no such file or directory\n", errors.ClusterUnreachable, 4),
    (REFUSED, errors.ClusterUnreachable, 4),
    ("Error in configuration: context was not found for specified context: nope\n", errors.ClusterUnreachable, 4),
    ('Error from server (Forbidden): namespaces "my-app" is forbidden: User "dev" cannot patch resource '
     '"namespaces" in API group "" in the namespace "my-app"\n', errors.Forbidden, 4),
    ('Error from server (NotFound): namespaces "x" not found\n', errors.NotFound, 1),
    ('Error from server (Conflict): Operation cannot be fulfilled on namespaces "my-app": the object has been '
     "modified; please apply your changes to the latest version and try again\n", errors.Conflict, 4),
    ('Error from server (AlreadyExists): destinationrules.networking.istio.io "web" already exists\n',
     errors.AlreadyExists, 1),
    ('The DestinationRule "web" is invalid: spec.trafficPolicy: Invalid value: "x"\n', errors.Invalid, 1),
    ("Error from server (InternalError): an error on the server has prevented the request from succeeding\n",
     errors.ServerError, 4),
    ("error: timed out waiting for the condition\n", errors.TimedOut, 4),
    ('error: the server doesn\'t have a resource type "virtualservices"\n', errors.NotFound, 1),
    ("Unable to connect to the server: EOF\n", errors.ClusterUnreachable, 4),
    ("error: You must be logged in to the server (Unauthorized)\n", errors.ClusterUnreachable, 4),
    ("something odd happened\n", errors.ToolFailed, 1),
    # what `kubectl rollout restart` prints for a 500 or 503: no "Error from server (...)"
    ("error: failed to patch: Internal error occurred: etcdserver: request timed out\n", errors.ServerError, 4),
    ("error: failed to patch: the server is currently unable to handle the request\n", errors.ServerError, 4),
]


@pytest.mark.parametrize("stderr,kind,code", CASES)
def test_failures_are_classified_with_one_line_naming_the_command(stderr, kind, code):
    error = classify_failure("kubectl", "kubectl get ns", 1, stderr, "")
    assert type(error) is kind
    assert error.exit_code == code
    assert "\n" not in error.message
    assert error.message.endswith("(from: kubectl get ns)")
    assert not error.message.startswith("E1125")
    assert not error.message.startswith(("error: ", "Error: "))  # the CLI adds its own "error: "


def test_first_error_line_skips_klog_noise():
    assert first_error_line(REFUSED).startswith("The connection to the server")


def test_connection_flags_come_first(fp):
    fp.register(["kubectl", "--kubeconfig", "/k", "--context", "prod", "get", "ns"], stdout="ok")
    runner = Runner(context="prod", kubeconfig="/k")
    assert runner.kubectl("get", "ns") == "ok"
    assert runner.argv("istioctl", ["x"]) == ["istioctl", "--kubeconfig", "/k", "--context", "prod", "x"]


def test_dry_run_records_mutating_calls_and_runs_reads(fp):
    fp.register(["kubectl", "get", "ns"], stdout="read")
    log = io.StringIO()
    runner = Runner(dry_run=True, verbose=True, log=log)
    assert runner.kubectl("get", "ns") == "read"
    assert runner.kubectl("label", "ns", "a", "x=y", mutating=True) == ""
    assert runner.recorded == [["kubectl", "label", "ns", "a", "x=y"]]
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0
    assert "+ kubectl get ns\n" in log.getvalue()
    assert "+ kubectl label ns a x=y  # dry run: not run" in log.getvalue()


def test_stdin_is_passed(fp):
    seen = {}
    fp.register(["kubectl", "apply", "-f", "-"], stdout="applied", stdin_callable=lambda data: seen.update(data=data))
    assert Runner().kubectl("apply", "-f", "-", stdin='{"a": 1}', mutating=True) == "applied"
    assert seen["data"] in ('{"a": 1}', b'{"a": 1}')


def test_nonzero_exit_raises_typed_error(fp):
    fp.register(["kubectl", "get", "namespace", "x", "-o", "json"], returncode=1,
                stderr='Error from server (NotFound): namespaces "x" not found\n')
    with pytest.raises(errors.NotFound, match='namespaces "x" not found'):
        Runner().kubectl_json("get", "namespace", "x")


def test_non_json_output_is_a_clear_error(fp):
    fp.register(["kubectl", "get", "ns", "-o", "json"], stdout="<html>")
    with pytest.raises(errors.ToolFailed, match="not JSON"):
        Runner().kubectl_json("get", "ns")


def _script(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_missing_tool_is_exit_4(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(errors.ToolMissing) as exc:
        Runner().istioctl("version")
    assert exc.value.exit_code == 4
    assert "istioctl not found on PATH" in exc.value.message


def test_timeout_kills_and_names_the_command(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", "exec sleep 5\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(errors.TimedOut) as exc:
        Runner(timeout=0.3).kubectl("get", "ns")
    assert exc.value.message.startswith("timed out after 0.")
    assert exc.value.message.endswith(", what was left of --timeout 0.3s: kubectl get ns")


def test_a_call_gets_a_bound_of_its_own_when_it_is_shorter(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", "exec sleep 5\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(errors.TimedOut, match=r"^timed out after 0.2s: kubectl get ns$"):
        Runner(timeout=30).kubectl("get", "ns", timeout=0.2)


def test_every_kubectl_call_gets_a_request_timeout_from_what_is_left(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", 'echo "$@"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    runner = Runner(timeout=90, deadline=time.monotonic() + 42.5)
    assert runner.kubectl("get", "ns").split() == ["get", "ns", "--request-timeout=42s"]
    assert runner.kubectl("get", "ns", timeout=3).split() == ["get", "ns", "--request-timeout=3s"]
    assert runner.kubectl("config", "view").split() == ["config", "view"]  # no request, no flag
    assert runner.display("kubectl", ["get", "ns"]) == "kubectl get ns"  # shown as the user would type it


def test_nothing_runs_once_the_deadline_has_passed(fp):
    runner = Runner(timeout=5, deadline=time.monotonic() - 1)
    with pytest.raises(errors.TimedOut, match=r"^--timeout 5s ran out before: kubectl get ns$") as exc:
        runner.kubectl("get", "ns")
    assert exc.value.exit_code == 4 and len(fp.calls) == 0


def test_timeout_kills_the_tools_whole_process_group(tmp_path, monkeypatch):
    """What kubectl started (an exec credential plugin, here a sleep holding its stdout)
    dies with it: the call returns at the bound, not when the grandchild ends."""
    pidfile = tmp_path / "plugin.pid"
    _script(tmp_path, "kubectl", f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    with pytest.raises(errors.TimedOut):
        Runner(timeout=0.5).kubectl("get", "ns")
    assert time.monotonic() - started < 2
    plugin = int(pidfile.read_text())
    for _ in range(50):  # reaped by init shortly after the kill
        try:
            os.kill(plugin, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the tool's child {plugin} outlived the timeout")


def test_stream_hands_over_lines(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", 'echo "Waiting for rollout"\necho "successfully rolled out"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    seen = []
    out = Runner().kubectl_stream("rollout", "status", "deploy/web", on_line=seen.append)
    assert seen == ["Waiting for rollout", "successfully rolled out"]
    assert "rolled out" in out


def test_stream_failure_is_typed(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", 'echo "error: timed out waiting for the condition" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(errors.TimedOut):
        Runner().kubectl_stream("rollout", "status", "deploy/web", on_line=lambda line: None)


def test_stream_timeout(tmp_path, monkeypatch):
    _script(tmp_path, "kubectl", "exec sleep 5\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(errors.TimedOut):
        Runner().kubectl_stream("rollout", "status", "deploy/web", on_line=lambda line: None, timeout=0.3)
