"""The shape every subcommand shares: parse, run to a Report, render, exit code."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import sys

import click

from kubectl_mesh import errors, text
from kubectl_mesh.errors import UsageError
from kubectl_mesh.helptext import CONTEXT, MeshCommand, MeshGroup
from kubectl_mesh.report import Report, render, use_colour
from kubectl_mesh.settings import Settings, current, global_options
from kubectl_mesh.text import printable


def mesh_command(name: str | None = None, *, group: bool = False, all_namespaces: bool = False,
                 examples=(), **attrs):
    """Declare a subcommand whose function takes (settings, **params) and returns a Report.

    Commands that act on one namespace reject -A with a usage error rather
    than silently ignoring it; `all_namespaces=True` lets the function handle it.
    `examples`, a list of (command line, what it does), is the help's Examples section.
    """
    attrs.setdefault("context_settings", dict(CONTEXT))
    attrs.setdefault("cls", MeshGroup if group else MeshCommand)
    attrs["examples"] = examples

    def decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            settings = current()
            ctx = click.get_current_context()
            settings.command = command_name(ctx)
            if settings.all_namespaces and not all_namespaces:
                raise UsageError(f"-A/--all-namespaces does not apply to `kubectl mesh {settings.command}`: "
                                 "give one namespace with -n")
            try:
                report = function(settings, *args, **kwargs)
            except errors.Forbidden as exc:
                if all_namespaces and settings.all_namespaces:
                    raise all_namespaces_forbidden(settings, exc) from exc
                raise
            if report is None:  # a group invoked with a subcommand
                return None
            report.command = settings.command
            report.dry_run = settings.dry_run
            return emit(report, settings)

        maker = click.group if group else click.command
        return maker(name, **attrs)(global_options(wrapper))

    return decorator


def all_namespaces_forbidden(settings: Settings, exc: errors.Forbidden) -> errors.Forbidden:
    """-A refused by RBAC (a namespace-scoped user): the same error, saying what to run instead,
    one namespace at a time, the context's named when it has one."""
    namespace = "NAMESPACE"
    with contextlib.suppress(errors.MeshError):
        namespace = settings.runner().kubectl("config", "view", "--minify", "-o", "jsonpath={..namespace}",
                                              timeout=10).strip() or namespace
    where = [*(["--context", settings.context] if settings.context else []),
             *(["--kubeconfig", settings.kubeconfig] if settings.kubeconfig else [])]
    instead = text.command("kubectl", "mesh", *settings.command.split(), "-n", namespace, *where)
    return errors.Forbidden(f"{exc.message}; -A reads every namespace, which needs cluster-wide list rights: "
                            f"run it for a namespace you may read instead ({instead})", command=exc.command)


class DefaultSubcommandGroup(MeshGroup):
    """`GROUP SUB SVC ...` for its subcommands, and `GROUP SVC ...` for the default action:
    a first word that is not a subcommand goes to the hidden `set` subcommand, whose
    options the group's help lists as its own (they are the main form's)."""

    def __init__(self, *args, usage: str = "", lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.usage = usage
        # Subcommands in modules of their own ({name: module with a `command`}), imported when used.
        self.lazy = dict(lazy or {})

    def resolve_command(self, ctx, args):
        if args and (args[0] in self.commands or args[0] in self.lazy):
            return super().resolve_command(ctx, args)
        if args and not args[0].startswith("-") and len(args) > 1 and not args[1].startswith("-"):
            # `canary promot my-app`: a mistyped subcommand, not a service with an extra word
            close = difflib.get_close_matches(args[0], self.visible_commands(), n=1, cutoff=0.6)
            if close:
                raise click.UsageError(f'unknown command "{args[0]}" for "{ctx.command_path}"; '
                                       f'did you mean "{close[0]}"?', ctx)
        return "set", self.commands["set"], args

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            self.add_command(importlib.import_module(self.lazy[name]).command, name)
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(self.lazy))

    def visible_commands(self) -> list[str]:
        names = [name for name, command in self.commands.items() if not command.hidden]
        return names + [name for name in self.lazy if name not in self.commands]

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, self.usage)

    def own_params(self, ctx):
        # -h/--help once, the group's (told apart by its flags: click names it "help" or
        # "_click_default_help" depending on the version).
        help_flags = set(ctx.help_option_names)
        main_form = [p for p in self.commands["set"].own_params(ctx)
                     if not (isinstance(p, click.Option) and help_flags & set(p.opts + p.secondary_opts))]
        return [*main_form, *super().own_params(ctx)]

    def shell_complete(self, ctx, incomplete):
        """`canary <TAB>`: the subcommands and, as the main form takes, the services."""
        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=self.get_command(ctx, name).get_short_help_str())
                 for name in self.visible_commands() if name.startswith(incomplete)]
        argument = next(p for p in self.commands["set"].params if isinstance(p, click.Argument))
        return items + argument.shell_complete(ctx, incomplete)


class DefaultAction(MeshCommand):
    """The hidden `set` command of a DefaultSubcommandGroup: the group's own form, so its
    usage, errors and help name the group (`kubectl mesh canary`), never `set`."""

    def make_context(self, info_name, args, parent=None, **extra):
        return super().make_context(None, args, parent=parent, **extra)

    def format_usage(self, ctx, formatter):
        path = ctx.parent.command_path if ctx.parent else ctx.command_path
        formatter.write_usage(path, "SVC [OPTIONS]")


def command_name(ctx: click.Context) -> str:
    """The command as the document names it: "canary promote"; "canary" for the default
    action (the hidden `set`, whose context adds no word)."""
    words = ctx.command_path.split()[2:]  # after "kubectl mesh"; the default action adds no word
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
