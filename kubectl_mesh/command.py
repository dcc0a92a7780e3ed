"""The shape every subcommand shares: parse, run to a Report, render, exit code."""

from __future__ import annotations

import functools
import importlib
import sys

import click

from kubectl_mesh.errors import UsageError
from kubectl_mesh.report import Report, render, use_colour
from kubectl_mesh.settings import Settings, current, global_options
from kubectl_mesh.text import printable


def mesh_command(name: str | None = None, *, group: bool = False, all_namespaces: bool = False, **attrs):
    """Declare a subcommand whose function takes (settings, **params) and returns a Report.

    Commands that act on one namespace reject -A with a usage error rather
    than silently ignoring it; `all_namespaces=True` lets the function handle it.
    """
    attrs.setdefault("context_settings", {"help_option_names": ["-h", "--help"], "max_content_width": 100})

    def decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            settings = current()
            if settings.all_namespaces and not all_namespaces:
                path = click.get_current_context().command_path
                raise UsageError(f"-A/--all-namespaces does not apply to `{path}`: give one namespace with -n")
            report = function(settings, *args, **kwargs)
            if report is None:  # a group invoked with a subcommand
                return None
            report.command = command_name(click.get_current_context())
            report.dry_run = settings.dry_run
            return emit(report, settings)

        maker = click.group if group else click.command
        return maker(name, **attrs)(global_options(wrapper))

    return decorator


class DefaultSubcommandGroup(click.Group):
    """`GROUP SUB SVC ...` for its subcommands, and `GROUP SVC ...` for the default action:
    a first word that is not a subcommand goes to the hidden `set` subcommand."""

    def __init__(self, *args, usage: str = "", lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.usage = usage
        # Subcommands in modules of their own ({name: module with a `command`}), imported when used.
        self.lazy = dict(lazy or {})

    def resolve_command(self, ctx, args):
        if args and (args[0] in self.commands or args[0] in self.lazy):
            return super().resolve_command(ctx, args)
        return "set", self.commands["set"], args

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            self.add_command(importlib.import_module(self.lazy[name]).command, name)
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(self.lazy))

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, self.usage)


class DefaultAction(click.Command):
    """The hidden `set` command of a DefaultSubcommandGroup, shown as the group's own usage."""

    def format_usage(self, ctx, formatter):
        path = ctx.parent.command_path if ctx.parent else ctx.command_path
        formatter.write_usage(path, "SVC [OPTIONS]")


def command_name(ctx: click.Context) -> str:
    """The command as the document names it: "canary promote"; "canary" for the default
    action (the hidden `set`)."""
    words = ctx.command_path.split()[2:]  # after "kubectl mesh"
    if len(words) > 1 and words[-1] == "set" and getattr(ctx.command, "hidden", False):
        words = words[:-1]
    return " ".join(words)


def emit(report: Report, settings: Settings) -> int:
    sys.stdout.write(render(report, settings.output, use_colour(settings.no_color)))
    sys.stdout.flush()
    if report.error is not None:
        print(f"error: {printable(report.error.message)}", file=sys.stderr)
    return report.exit_code


def progress(message: str) -> None:
    """Progress for people; on stderr so that stdout stays data."""
    print(printable(message), file=sys.stderr, flush=True)
