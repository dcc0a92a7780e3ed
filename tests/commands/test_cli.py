"""The CLI's shared behaviour: global options anywhere, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import batch_read, deployment_with_pods, namespace, register_cluster

BATCH = batch_read("my-app")


def _cluster(fp, prefix=()):
    objs = [namespace("my-app", {"istio-injection": "enabled"}), *deployment_with_pods("web", sidecar="container")]
    register_cluster(fp, objs, "my-app", prefix)


@pytest.mark.parametrize("argv", [
    ["verify", "-n", "my-app", "--context", "prod", "--no-istioctl"],
    ["--context", "prod", "verify", "my-app", "--no-istioctl"],
    ["--context=prod", "-n", "my-app", "verify", "--no-istioctl"],
    ["verify", "--no-istioctl", "my-app", "--context", "prod"],
])
def test_global_options_anywhere(fp, mesh_cli, argv):
    _cluster(fp, prefix=("--context", "prod"))
    result = mesh_cli(*argv)
    assert result.exit_code == 0, result.stderr
    assert "1/1" not in result.stderr


def test_positional_and_flag_namespace_must_agree(mesh_cli):
    result = mesh_cli("verify", "a", "-n", "b")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert 'namespace given twice with different values: "a" and -n "b"' in result.stderr


@pytest.mark.parametrize("argv,needle", [
    (["enable", "Bad_NS"], 'invalid namespace "Bad_NS"'),
    (["verify", "-n", "Bad_NS"], 'invalid namespace "Bad_NS"'),
    (["verify", "--timeout", "soon"], 'invalid duration "soon"'),
    (["verify", "--output", "xml"], "'xml' is not one of"),
    (["verify", "--bogus"], "No such option '--bogus'"),
    (["nosuch"], 'unknown command "nosuch" for "kubectl mesh"'),
    (["enabel", "my-app"], 'unknown command "enabel" for "kubectl mesh"; did you mean "enable"?'),
    (["canary", "promot", "my-app"], 'unknown command "promot" for "kubectl mesh canary"; did you mean "promote"?'),
    (["canary", "my-app", "--stable", "v1", "--canary", "v2"], "Missing option '--weight'. (see 'kubectl mesh canary --help')"),
    (["enable", "my-app", "--revision", "Bad.Rev"], 'invalid revision "Bad.Rev"'),
    (["advise", "--need", "teleport"], 'unknown need "teleport"'),
    # Unicode digits and absurd values, which were written to the cluster or overflowed after changes
    (["sidecar-resources", "deploy/web", "-n", "my-app", "--cpu", "１００m", "--memory", "128Mi"],
     'invalid --cpu "１００m"'),
    (["sidecar-resources", "deploy/web", "-n", "my-app", "--cpu", "100m", "--memory", "1e400"],
     'invalid --memory "1e400"'),
    (["circuit-breaker", "web", "-n", "my-app", "--interval", "٣s"], '--interval: invalid duration "٣s"'),
    (["canary", "web", "-n", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "٣"], 'invalid weight "٣"'),
    (["enable", "my-app", "--timeout", "1e400"], 'invalid duration "1e400"'),
    (["enable", "my-app", "--timeout", "99999999999999999999h"], "must be at most 24h"),
    # a change to a whole namespace never guesses it
    (["enable"], "missing NAMESPACE: `kubectl mesh enable` changes a whole namespace"),
    (["disable"], "missing NAMESPACE: `kubectl mesh disable` changes a whole namespace"),
    (["mtls", "strict"], "missing NAMESPACE: `kubectl mesh mtls` changes a whole namespace"),
    # "" is a usage error everywhere, never "the default"
    (["enable", ""], 'invalid namespace ""'),
    (["verify", ""], 'invalid namespace ""'),
    (["status", "-n", ""], "must not be empty"),
    (["verify", "--context", ""], "must not be empty"),
    (["verify", "--kubeconfig", ""], "must not be empty"),
    (["enable", "my-app", "--revision", ""], 'invalid revision ""'),
    (["sidecar-resources", "web", "--kind", "", "--cpu", "1", "--memory", "1Gi"], 'invalid workload kind ""'),
    (["canary", "", "--stable", "v1", "--canary", "v2", "--weight", "1"], 'invalid service name ""'),
    (["diagnose", "-f", ""], '-f "": give a file'),
    (["routes", "web-1", "--name", ""], 'invalid --name ""'),
    # a control character in a value is shown escaped, on one line
    (["enable", "my-app\x1b[2J\n✓ done"], 'invalid namespace "my-app\\x1b[2J\\n✓ done"'),
])
def test_bad_input_is_one_line_and_exit_2_with_no_call(fp, mesh_cli, argv, needle):
    result = mesh_cli(*argv)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert len(fp.calls) == 0


def test_environment_error_in_json_mode_prints_error_document(fp, mesh_cli):
    fp.register(["kubectl", "--kubeconfig", "/nonexistent", *batch_read("x")], returncode=1,
                stderr="error: stat /nonexistent: no such file or directory\n")
    result = mesh_cli("verify", "-n", "x", "--kubeconfig", "/nonexistent", "-o", "json")
    assert result.exit_code == 4
    assert result.json()["error"]["type"] == "ClusterUnreachable"
    assert result.json()["success"] is False
    assert result.stderr.startswith("error: stat /nonexistent: no such file or directory (from: kubectl")
    assert len(result.stderr.strip().splitlines()) == 1


def test_interrupt_exits_130(mesh_cli, monkeypatch):
    from kubectl_mesh.runner import Runner

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "kubectl_json", interrupt)
    result = mesh_cli("verify", "my-app")
    assert result.exit_code == 130
    assert "run the same command again" in result.stderr


def test_help_lists_every_command(mesh_cli):
    result = mesh_cli("--help")
    assert result.exit_code == 0
    for name in ("advise", "enable", "disable", "verify", "mtls", "canary", "circuit-breaker",
                 "sidecar-resources", "diagnose", "status", "describe", "routes"):
        assert f"  {name} " in result.stdout


def test_version(mesh_cli):
    assert "kubectl mesh, version" in mesh_cli("--version").stdout


def _imported(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -m kubectl_mesh ARGS` and list the modules it imported (-X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubectl_mesh", *args], capture_output=True,
                            text=True, env={**os.environ, **(env or {})})
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result, modules


def test_python_dash_m_works_and_help_does_not_import_heavy_modules():
    result, modules = _imported("--help")
    assert result.returncode == 0 and "Usage: kubectl mesh" in result.stdout
    assert not modules & {"click", "plumbum", "yaml", "kubectl_mesh.commands.enable"}, modules
    # a width not stored (see help_gen.WIDTHS) is rendered by click itself
    narrow, modules = _imported("--help", env={"COLUMNS": "60"})
    assert "click" in modules and narrow.stdout.startswith("Usage: kubectl mesh")


def test_no_color_and_json_have_no_escape_codes(fp, mesh_cli):
    _cluster(fp)
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert "\x1b[" not in result.stdout
    json.loads(result.stdout)


@pytest.mark.parametrize("argv", [
    ["enable", "my-app", "-A"], ["-A", "disable", "my-app"], ["mtls", "my-app", "status", "-A"],
    ["canary", "status", "my-app", "-A"], ["circuit-breaker", "my-app", "-A"], ["describe", "web-1", "-A"],
    ["routes", "web-1", "-A"], ["sidecar-resources", "deploy/web", "--cpu", "1", "--memory", "1Gi", "-A"],
])
def test_all_namespaces_is_a_usage_error_where_it_does_not_apply(fp, mesh_cli, argv):
    result = mesh_cli(*argv)
    assert result.exit_code == 2
    assert "-A/--all-namespaces does not apply" in result.stderr
    assert len(fp.calls) == 0
