"""`kubectl mesh`: the command-line entry point.

Kept thin and light: subcommands are imported only when run, so `--help`
and completion start fast. Each command module returns a Report; `main`
renders it and turns errors into one line and the contract's exit code.
"""

from __future__ import annotations

import difflib
import importlib
import sys

import click

from kubectl_mesh import __version__, errors
from kubectl_mesh.helptext import CONTEXT, HelpSections
from kubectl_mesh.settings import Settings, global_options
from kubectl_mesh.text import printable

# name -> (module, one-line help). The help is here so that listing the
# commands does not import them.
COMMANDS: dict[str, tuple[str, str]] = {
    "advise": ("kubectl_mesh.commands.advise", "Decide whether a namespace needs Istio or Gateway API alone."),
    "enable": ("kubectl_mesh.commands.enable", "Enable sidecar injection, restart what lacks the proxy, verify."),
    "disable": ("kubectl_mesh.commands.disable", "Remove injection and restart meshed workloads."),
    "verify": ("kubectl_mesh.commands.verify", "Check that every pod of a namespace is in the mesh."),
    "mtls": ("kubectl_mesh.commands.mtls", "Set or show the namespace's mTLS mode (strict|permissive|status)."),
    "canary": ("kubectl_mesh.commands.canary", "Shift traffic between a stable and a canary subset by weight."),
    "circuit-breaker": ("kubectl_mesh.commands.circuit_breaker", "Add, show or remove a service's circuit breaker."),
    "sidecar-resources": ("kubectl_mesh.commands.sidecar_resources", "Set the sidecar proxy's CPU and memory."),
    "diagnose": ("kubectl_mesh.commands.diagnose",
                 "Find the guide's troubleshooting problems, online or in manifests."),
    "status": ("kubectl_mesh.commands.status", "One screen: injection, pods meshed, mTLS, canaries, breakers."),
    "describe": ("kubectl_mesh.commands.describe", "istioctl x describe pod, parsed."),
    "routes": ("kubectl_mesh.commands.routes", "istioctl proxy-config routes, parsed."),
    "version": ("kubectl_mesh.commands.version", "Plugin, kubectl, cluster and Istio versions, with skew."),
    "completion": ("kubectl_mesh.commands.completion", "Print the bash, zsh or fish completion script."),
}
EXAMPLES = (
    ("kubectl mesh advise my-app --need mtls,canary", "decide whether my-app needs Istio at all"),
    ("kubectl mesh enable my-app", "put my-app's pods in the mesh, then verify"),
    ("kubectl mesh mtls my-app strict", "strict mTLS, refused while a pod lacks a sidecar"),
    ("kubectl mesh canary my-app --stable v1 --canary v2 --weight 10 -n my-app", "10% of my-app's traffic to v2"),
    ("kubectl mesh status -A", "one screen per namespace"),
    ("kubectl mesh diagnose -f manifests/", "the guide's problems, in manifests, no cluster"),
)


class LazyGroup(HelpSections, click.Group):
    examples = EXAMPLES

    def list_commands(self, ctx):
        return list(COMMANDS)

    def resolve_command(self, ctx, args):
        """An unknown command is an error that suggests the closest, as kubectl does."""
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6)
            suggestion = f'; did you mean "{close[0]}"?' if close else ""
            raise click.UsageError(f'unknown command "{name}" for "kubectl mesh"{suggestion}', ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def shell_complete(self, ctx, incomplete):
        """Subcommand names from the table (no imports), then the group's options."""
        from click.shell_completion import CompletionItem

        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [CompletionItem(name, help=help_text) for name, (_, help_text) in COMMANDS.items()
                if name.startswith(incomplete)]

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT, invoke_without_command=True)
@click.version_option(__version__, "--version", prog_name="kubectl mesh")
@global_options
@click.pass_context
def cli(ctx):
    """Istio service mesh, the platform guide's way: safe, idempotent, checked.

    Global options work before or after the command, e.g.
    `kubectl mesh verify -n my-app --context prod`.

    Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 refused by a safety
    check (--force overrides), 4 environment (tools, cluster, RBAC, timeout),
    5 inconclusive (canary run: too little traffic to judge), 130 interrupted
    (run again to finish).
    """
    if ctx.invoked_subcommand is None:  # `kubectl mesh` alone: the help, as kubectl prints its own
        click.echo(ctx.get_help())


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    exit_without_teardown(code)


def exit_without_teardown(code: int) -> None:
    """Exit once the output is flushed and the atexit handlers have run, without
    freeing every object one by one (after a large diagnose, tearing down the
    parsed cluster costs a tenth of the run)."""
    import atexit
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # e.g. `kubectl mesh ... | head`: what was not read is dropped
        pass
    except OSError:
        code = code or errors.ENVIRONMENT
    atexit._run_exitfuncs()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    settings = Settings()
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["__complete"]:  # completions/kubectl_complete-mesh delegates here
        return complete(args[1:])
    try:
        result = cli.main(args=args, prog_name="kubectl mesh", standalone_mode=False, obj=settings,
                          complete_var="_KUBECTL_MESH_COMPLETE")
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        path = exc.ctx.command_path.strip() if exc.ctx else "kubectl mesh"
        message = f"{exc.format_message()} (see '{path} --help')"
        command = " ".join(path.split()[2:])
        return report_error(errors.UsageError(message), settings, args, command=command)
    except errors.MeshError as exc:
        return report_error(exc, settings, args)
    except (KeyboardInterrupt, click.Abort):
        print("interrupted; run the same command again to finish", file=sys.stderr)
        return errors.INTERRUPTED
    except BrokenPipeError:  # e.g. `kubectl mesh ... | head`
        return errors.OK


def complete(words: list[str]) -> int:
    """Answer kubectl's plugin completion protocol for `words` (see complete.py)."""
    from kubectl_mesh import complete as protocol

    sys.stdout.write(protocol.render(protocol.candidates(cli, words, Settings())))
    return errors.OK


def complete_main(argv: list[str] | None = None) -> None:
    """`kubectl_complete-mesh WORDS...`, or `--script bash|zsh|fish` for completions/."""
    words = sys.argv[1:] if argv is None else argv
    if len(words) == 2 and words[0] == "--script" and words[1] in ("bash", "zsh", "fish"):
        from kubectl_mesh.complete import shell_script

        sys.stdout.write(shell_script(cli, words[1]))
        sys.exit(errors.OK)
    sys.exit(complete(words))


def report_error(exc: errors.MeshError, settings: Settings, args: list[str], *, command: str | None = None) -> int:
    """One line on stderr and the contract's exit code; under -o json|yaml (even when the
    error came before the option was read) the document with the `error` on stdout too."""
    from kubectl_mesh.report import render_error

    output = output_requested(args) or settings.output
    document = render_error(exc, output, command=settings.command if command is None else command,
                            dry_run=settings.dry_run)
    if document:
        sys.stdout.write(document)
    print(f"error: {printable(exc.message)}", file=sys.stderr)
    return exc.exit_code


def output_requested(args: list[str]) -> str | None:
    """The -o/--output value on the command line, read without click (a usage error may
    have stopped click before it reached the option)."""
    for index, arg in enumerate(args):
        if arg == "--":
            return None
        if arg in ("-o", "--output"):
            value = args[index + 1] if index + 1 < len(args) else ""
        elif arg.startswith("--output="):
            value = arg[len("--output="):]
        elif arg.startswith("-o") and not arg.startswith("--"):
            value = arg[2:].removeprefix("=")
        else:
            continue
        if value in ("json", "yaml"):
            return value
    return None
