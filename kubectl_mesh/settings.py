"""Global options, accepted anywhere on the command line.

kubectl hands every argument after `mesh` to the plugin, and users put
`--context` or `-n` before or after the subcommand as they do with kubectl.
The options are therefore declared on the group and on every command; each
records into one Settings object shared through click's context.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import click

from kubectl_mesh import validate
from kubectl_mesh.errors import UsageError

OUTPUTS = ("text", "json", "yaml")
DEFAULT_WAIT = "5m"


@dataclass
class Settings:
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    output: str = "text"
    dry_run: bool = False
    timeout: float = 300.0
    verbose: bool = False
    no_color: bool = False
    # When the command started: --timeout bounds it all from here.
    started: float = field(default_factory=time.monotonic)
    # The command being run ("canary promote"), for the document of an error it raises.
    command: str = ""

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    def runner(self, **overrides):
        """The tool runner for these settings (imported here: plumbum is not needed for --help)."""
        from kubectl_mesh.runner import Runner

        options = {
            "context": self.context,
            "kubeconfig": self.kubeconfig,
            "verbose": self.verbose,
            "dry_run": self.dry_run,
            "timeout": self.timeout,
            "deadline": self.deadline,
        }
        options.update(overrides)
        return Runner(**options)

    def resolve_namespace(self, positional: str | None, runner=None, *, required: bool = True,
                          explicit: bool = False) -> str | None:
        """The namespace a command acts on: the positional argument or -n; else, for a
        command that only reads, the context's namespace (as kubectl does) or
        "default", said on stderr. A command that changes a whole namespace
        (`explicit`) never guesses: without one it is a usage error."""
        if positional is not None:
            validate.namespace(positional)  # "" included
        if positional and self.namespace and positional != self.namespace:
            raise UsageError(
                f'namespace given twice with different values: "{positional}" and -n "{self.namespace}"'
            )
        chosen = positional or self.namespace
        if chosen:
            return validate.namespace(chosen)
        if explicit:
            path = _command_path()
            raise UsageError(f"missing NAMESPACE: `{path}` changes a whole namespace, so name it "
                             f"(`{path} NAMESPACE` or -n NAMESPACE); it is not taken from the context")
        if not required:
            return None
        current = ""
        if runner is not None:
            from kubectl_mesh import errors

            try:
                current = runner.kubectl(
                    "config", "view", "--minify", "-o", "jsonpath={..namespace}", timeout=10
                ).strip()
            except errors.MeshError:
                current = ""
        if current:
            chosen = validate.namespace(current)
            print(f'namespace "{chosen}" (the context\'s; give NAMESPACE or -n to choose)', file=sys.stderr)
        else:
            chosen = "default"
            print('namespace "default" (the context names none; give NAMESPACE or -n to choose)', file=sys.stderr)
        return chosen


def _command_path() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "kubectl mesh"


def _settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    ctx.obj = root.obj
    return root.obj


def _store(attribute: str, convert=None):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None or value is False or value == ():
            return value
        if value == "":
            raise click.BadParameter("must not be empty", ctx=ctx, param=param)
        settings = _settings(ctx)
        try:
            setattr(settings, attribute, convert(value) if convert else value)
        except UsageError as exc:
            raise click.BadParameter(exc.message, ctx=ctx, param=param) from None
        return value

    return callback


def _namespace(value: str) -> str:
    return validate.namespace(value)


def _timeout(value: str) -> float:
    return validate.timeout_seconds(value)


def _complete_namespace(ctx, param, incomplete):
    from kubectl_mesh.cluster_names import complete_namespaces

    return complete_namespaces(ctx, param, incomplete)


def global_options(function):
    """Add the contract's global options to a click command or group."""
    options = [
        _global("--context", metavar="NAME", expose_value=False, callback=_store("context"),
                     help="kubeconfig context to use (passed on to kubectl and istioctl)."),
        _global("--kubeconfig", metavar="PATH", expose_value=False, callback=_store("kubeconfig"),
                     help="Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."),
        _global("-n", "--namespace", metavar="NS", expose_value=False,
                     callback=_store("namespace", _namespace), shell_complete=_complete_namespace,
                     help="Namespace (default: the context's namespace)."),
        _global("-A", "--all-namespaces", is_flag=True, default=False, expose_value=False,
                     callback=_store("all_namespaces"), help="Act on all namespaces where it makes sense."),
        _global("-o", "--output", type=click.Choice(OUTPUTS), expose_value=False,
                     callback=_store("output"), help="Output format: text, json or yaml."),
        _global("--dry-run", is_flag=True, default=False, expose_value=False,
                     callback=_store("dry_run"), help="Print the plan; change nothing."),
        _global("--timeout", metavar="DURATION", expose_value=False, callback=_store("timeout", _timeout),
                     help=f"Bound on every wait, e.g. 90s or 5m (default {DEFAULT_WAIT})."),
        _global("-v", "--verbose", is_flag=True, default=False, expose_value=False,
                     callback=_store("verbose"), help="Echo each kubectl and istioctl command to stderr."),
        _global("--no-color", is_flag=True, default=False, expose_value=False,
                     callback=_store("no_color"), help="No colour in text output (also NO_COLOR)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _global(*decls, **attrs):
    from kubectl_mesh.helptext import GlobalOption

    return click.option(*decls, cls=GlobalOption, **attrs)


def current(ctx: click.Context | None = None) -> Settings:
    ctx = ctx or click.get_current_context()
    settings = _settings(ctx)
    if os.environ.get("NO_COLOR"):
        settings.no_color = True
    return settings
