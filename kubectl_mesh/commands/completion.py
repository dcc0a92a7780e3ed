"""`completion SHELL`: the bash, zsh or fish completion script, printed."""

from __future__ import annotations

import sys

import click

from kubectl_mesh import errors
from kubectl_mesh.helptext import CONTEXT, MeshCommand

SHELLS = ("bash", "zsh", "fish")


@click.command("completion", cls=MeshCommand, context_settings=CONTEXT, examples=[
    ("source <(kubectl mesh completion bash)", "this shell, for `kubectl-mesh ...`"),
    ("kubectl mesh completion zsh > \"${fpath[1]}/_kubectl-mesh\"", "zsh, for good"),
    ("kubectl mesh completion fish > ~/.config/fish/completions/kubectl-mesh.fish", "fish"),
])
@click.argument("shell", metavar="bash|zsh|fish", type=click.Choice(SHELLS),
                shell_complete=lambda ctx, param, incomplete: [s for s in SHELLS if s.startswith(incomplete)])
def command(shell):
    """Print the completion script for SHELL (bash, zsh or fish).

    It completes `kubectl-mesh` run directly: subcommands, flags, and
    namespaces, services, pods and workloads from the cluster. `kubectl mesh
    <TAB>` (kubectl 1.26+) needs no script: kubectl asks `kubectl_complete-mesh`,
    which install.sh puts on PATH beside `kubectl-mesh`.
    """
    from kubectl_mesh.cli import cli
    from kubectl_mesh.complete import shell_script

    sys.stdout.write(shell_script(cli, shell))
    return errors.OK
