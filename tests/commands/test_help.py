"""Help and usage as people expect from kubectl-family tools: Examples that are real
invocations in every help, the main form's options in `canary --help`, global options
once and last, help with no arguments, the closest command suggested, and usage
errors as data under -o json|yaml."""

from __future__ import annotations

import shlex

import click
import pytest
import yaml

from kubectl_mesh.cli import COMMANDS, cli
from kubectl_mesh.helptext import GlobalOption
from tests.schema import assert_valid


def _every_command():
    """(path words, click command) for the group, every command and every subcommand."""
    ctx = click.Context(cli, info_name="kubectl mesh")
    found = [((), cli)]
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        found.append(((name,), command))
        if isinstance(command, click.Group):  # lazy subcommands too (canary run)
            subs = ((sub_name, command.get_command(ctx, sub_name)) for sub_name in command.list_commands(ctx))
            found += [((name, sub_name), sub) for sub_name, sub in subs if not sub.hidden]
    return found


COMMAND_PATHS = [" ".join(words) or "(group)" for words, _ in _every_command()]
# Its help keeps its examples in the docstring, not in mesh_command(examples=...): the lead is
# changing kubectl_mesh/commands/canary_run.py (issue 13); drop this when it has Examples.
HELP_PATHS = COMMAND_PATHS


def _resolve(args: list[str]):
    """Parse a command line as click would, down to the command it names, without running it."""
    ctx = cli.make_context("kubectl mesh", list(args), resilient_parsing=False, obj=None)
    command, rest = cli, [*getattr(ctx, "_protected_args", []), *ctx.args]
    while isinstance(command, click.Group) and rest:
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args] if isinstance(command, click.Group) else ctx.args
    assert not rest, f"arguments left over: {rest}"
    return command


@pytest.mark.parametrize("path", HELP_PATHS)
def test_every_help_has_examples_that_are_real_invocations(mesh_cli, path):
    words = [] if path == "(group)" else path.split()
    result = mesh_cli(*words, "--help")
    assert result.exit_code == 0, result.stderr
    assert "\nExamples:\n" in result.stdout
    command = dict((" ".join(w) or "(group)", c) for w, c in _every_command())[path]
    assert command.examples, path
    for line, what in command.examples:
        assert what and f"  # {what}\n  {line}\n" in result.stdout
        argv = shlex.split(line)
        if argv[:2] != ["kubectl", "mesh"]:  # a shell line around it, e.g. source <(kubectl mesh ...)
            continue
        argv = argv[:next((i for i, word in enumerate(argv) if word in (">", "|", "&&")), len(argv))]
        resolved = _resolve(argv[2:])
        subcommands = getattr(command, "commands", {}).values()
        assert resolved is command or path == "(group)" or resolved in subcommands, (line, resolved.name)


@pytest.mark.parametrize("path", HELP_PATHS)
def test_global_options_are_listed_once_after_the_commands_own(mesh_cli, path):
    if path == "completion":
        pytest.skip("completion prints a script: it takes no global options")
    words = [] if path == "(group)" else path.split()
    out = mesh_cli(*words, "--help").stdout
    assert out.count("--kubeconfig PATH") == 1
    global_at = out.index("\nGlobal options:\n")
    assert global_at > out.index("\nExamples:\n")
    if "\nOptions:\n" in out:
        assert out.index("\nOptions:\n") < global_at
    assert "--context NAME" in out[global_at:]


@pytest.mark.parametrize("group,own", [
    ("canary", ("--stable VERSION", "--canary VERSION", "--weight N", "--label KEY", "--force")),
    ("circuit-breaker", ("--max-connections N", "--consecutive-5xx N", "--interval DURATION", "--force")),
])
def test_the_main_forms_options_are_in_the_groups_help(mesh_cli, group, own):
    out = mesh_cli(group, "--help").stdout
    options = out[out.index("\nOptions:\n"):out.index("\nCommands:\n")]
    for option in own:
        assert options.count(option) == 1, option
    assert options.count("--help") == 1, options  # the group's and the main form's help are one option
    assert " set " not in out and "set\n" not in out


def test_errors_of_the_main_form_point_at_the_group_not_at_set(mesh_cli):
    result = mesh_cli("canary", "my-app", "--stable", "v1")
    assert result.exit_code == 2
    assert "(see 'kubectl mesh canary --help')" in result.stderr and "set" not in result.stderr


def test_global_options_are_declared_as_such_everywhere():
    for words, command in _every_command():
        globals_ = {p.name for p in command.params if isinstance(p, GlobalOption)}
        if words != ("completion",):
            assert {"context", "kubeconfig", "namespace", "output", "dry_run"} <= globals_, words


def test_no_arguments_prints_the_help_on_stdout_and_exits_0(mesh_cli):
    result = mesh_cli()
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: kubectl mesh")
    assert "Commands:" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("argv", [
    ["enabel", "-o", "json"], ["-o", "json", "enabel"], ["-ojson", "enabel"], ["enabel", "--output=json"],
])
def test_an_unknown_command_under_json_prints_the_error_document(fp, mesh_cli, argv):
    result = mesh_cli(*argv)
    assert result.exit_code == 2
    doc = result.json()
    assert doc["success"] is False and doc["error"]["type"] == "UsageError" and doc["error"]["exitCode"] == 2
    assert 'did you mean "enable"?' in doc["error"]["message"]
    assert result.stderr.startswith('error: unknown command "enabel"')
    assert_valid(doc)
    assert not fp.calls


@pytest.mark.parametrize("argv,command", [
    (["verify", "-n", "Bad_NS", "-o", "json"], "verify"),
    (["canary", "promote", "my-app", "--weight", "5", "-o", "json"], "canary promote"),
    (["canary", "my-app", "--stable", "v1", "-o", "json"], "canary"),
    (["mtls", "my-app", "sometimes", "-o", "json"], "mtls"),
])
def test_usage_errors_under_json_name_their_command(fp, mesh_cli, argv, command):
    result = mesh_cli(*argv)
    assert result.exit_code == 2
    doc = result.json()
    assert doc["command"] == command and doc["error"]["exitCode"] == 2
    assert_valid(doc)


def test_usage_errors_under_yaml_too(mesh_cli):
    result = mesh_cli("enabel", "-o", "yaml")
    assert result.exit_code == 2
    doc = yaml.safe_load(result.stdout)
    assert doc["error"]["type"] == "UsageError"
    assert_valid(doc)


def test_text_usage_errors_print_nothing_on_stdout(mesh_cli):
    result = mesh_cli("enabel")
    assert result.exit_code == 2 and result.stdout == ""
