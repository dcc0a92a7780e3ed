"""kubectl's plugin completion protocol and the shell scripts in completions/."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_mesh import cli, complete
from kubectl_mesh.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
NS_QUERY = ["kubectl", "get", "namespaces", "-o", "name", "--request-timeout=2s"]


def _values(words):
    return [value for value, _ in complete.candidates(cli.cli, words)]


def test_empty_word_lists_subcommands_and_ends_with_directive(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.complete_main([""])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == ":4"
    assert [line.split("\t")[0] for line in lines[:-1]] == list(COMMANDS)
    assert lines[0] == "advise\tDecide whether a namespace needs Istio or Gateway API alone."


def test_prefix_and_global_options_before_the_command():
    assert _values(["veri"]) == ["verify"]
    assert _values(["ver"]) == ["verify", "version"]
    assert _values(["--context", "prod", "di"]) == ["disable", "diagnose"]


def test_flags_of_a_subcommand():
    values = _values(["enable", "--re"])
    assert values == ["--revision", "--restart"]
    assert "--context" in _values(["verify", "--"])


def test_choices_are_offered():
    assert _values(["enable", "--restart", ""]) == ["missing", "all", "none"]
    assert _values(["verify", "-o", "j"]) == ["json"]


def test_namespaces_come_from_the_cluster(fp):
    fp.register(NS_QUERY, stdout="namespace/default\nnamespace/my-app\nnamespace/my-other\n")
    assert _values(["verify", "my"]) == ["my-app", "my-other"]


def test_namespace_option_completes_from_the_cluster(fp):
    fp.register(NS_QUERY, stdout="namespace/default\nnamespace/my-app\n")
    assert _values(["verify", "-n", ""]) == ["default", "my-app"]


def test_context_is_passed_on_to_the_cluster_query(fp):
    fp.register(["kubectl", "--context", "prod", *NS_QUERY[1:]], stdout="namespace/prod-ns\n")
    assert _values(["--context", "prod", "enable", ""]) == ["prod-ns"]


def test_pods_and_workloads_use_the_namespace_typed(fp):
    fp.register(["kubectl", "get", "pods", "-o", "name", "--request-timeout=2s", "-n", "my-app"],
                stdout="pod/web-1\npod/api-1\n")
    for resource, out in (("deployments.apps", "deployment.apps/web\n"), ("statefulsets.apps", ""),
                          ("daemonsets.apps", "")):
        fp.register(["kubectl", "get", resource, "-o", "name", "--request-timeout=2s", "-n", "my-app"], stdout=out,
                    occurrences=2)
    assert _values(["describe", "-n", "my-app", "w"]) == ["web-1"]
    assert _values(["routes", "-n", "my-app", "deploy/"]) == ["deploy/web"]


def test_canary_and_circuit_breaker_complete_services_as_their_main_form_takes_them(fp):
    fp.register(["kubectl", "get", "services", "-o", "name", "--request-timeout=2s", "-n", "my-app"],
                stdout="service/my-app\nservice/payments\n", occurrences=3)
    assert _values(["canary", "-n", "my-app", "m"]) == ["my-app"]
    assert _values(["circuit-breaker", "-n", "my-app", "p"]) == ["payments"]
    assert _values(["canary", "-n", "my-app", ""]) == ["promote", "rollback", "finish", "status", "run", "my-app",
                                                       "payments"]


def test_the_completion_command_offers_shells():
    assert _values(["completion", ""]) == ["bash", "zsh", "fish"]


def test_unreachable_cluster_gives_quietly_nothing(fp, capsys):
    fp.register(NS_QUERY, returncode=1, stderr="The connection to the server localhost:8080 was refused\n")
    with pytest.raises(SystemExit):
        cli.complete_main(["enable", ""])
    captured = capsys.readouterr()
    assert captured.out == ":4\n"
    assert captured.err == ""


def test_dunder_complete_entry(mesh_cli):
    result = mesh_cli("__complete", "adv")
    assert result.stdout.splitlines()[-1] == ":4"
    assert result.stdout.startswith("advise\t")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_shell_scripts_are_current(shell):
    committed = (ROOT / "completions" / f"kubectl-mesh.{shell}").read_text()
    assert committed == complete.shell_script(cli.cli, shell)


def test_helper_script_delegates_to_the_plugin():
    script = (ROOT / "completions" / "kubectl_complete-mesh").read_text()
    assert script.startswith("#!/bin/sh")
    assert 'exec kubectl-mesh __complete "$@"' in script


def test_services_for_canary_and_circuit_breaker(fp):
    fp.register(["kubectl", "get", "services", "-o", "name", "--request-timeout=2s", "-n", "my-app"],
                stdout="service/my-app\nservice/backend-api\n", occurrences=2)
    assert _values(["canary", "promote", "-n", "my-app", "b"]) == ["backend-api"]
    assert _values(["circuit-breaker", "status", "-n", "my-app", ""]) == ["my-app", "backend-api"]


def test_workloads_for_sidecar_resources(fp):
    for resource, names in (("deployments.apps", "deployment.apps/web\n"), ("statefulsets.apps", "statefulset.apps/db\n"),
                            ("daemonsets.apps", "")):
        fp.register(["kubectl", "get", resource, "-o", "name", "--request-timeout=2s", "-n", "my-app"], stdout=names)
    assert _values(["sidecar-resources", "-n", "my-app", ""]) == ["deploy/web", "sts/db"]


def test_mtls_modes():
    assert _values(["mtls", "my-app", "p"]) == ["permissive"]
