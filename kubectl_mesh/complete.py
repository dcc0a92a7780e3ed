"""`kubectl_complete-mesh`: completion as kubectl's plugin protocol asks for it.

kubectl (1.26+) runs `kubectl_complete-mesh ARGS...` with the words typed
after `mesh`, the last one possibly empty, and expects one candidate a line
(optionally `candidate<TAB>description`), then a `:N` directive line; 4
means "no file completion". Names from the cluster (namespaces, services,
pods, workloads) are offered when it answers within two seconds, and quietly
not at all when it does not.
"""

from __future__ import annotations

import sys

NO_FILE_COMPLETION = 4
CLUSTER_TIMEOUT = 2.0


def candidates(words: list[str]) -> list[tuple[str, str]]:
    """(value, description) pairs for the last, incomplete word."""
    from click.shell_completion import ShellComplete

    from kubectl_mesh.cli import cli
    from kubectl_mesh.settings import Settings

    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    completer = ShellComplete(cli, {"obj": Settings()}, "kubectl mesh", "_KUBECTL_MESH_COMPLETE")
    try:
        items = completer.get_completions(args, incomplete)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    return [(str(item.value), (item.help or "").splitlines()[0] if item.help else "") for item in items]


def cluster_names(ctx, resource: str, incomplete: str, *, namespaced: bool = False) -> list:
    """Names of `resource` from the cluster, for click's shell_complete callbacks."""
    from click.shell_completion import CompletionItem

    from kubectl_mesh import errors
    from kubectl_mesh.settings import Settings

    root = ctx.find_root() if ctx is not None else None
    settings = root.obj if root is not None and isinstance(root.obj, Settings) else Settings()
    runner = settings.runner(dry_run=False, verbose=False)
    args = ["get", resource, "-o", "name", f"--request-timeout={int(CLUSTER_TIMEOUT)}s"]
    if namespaced and settings.namespace:
        args += ["-n", settings.namespace]
    try:
        out = runner.kubectl(*args, timeout=CLUSTER_TIMEOUT + 1)
    except errors.MeshError:
        return []
    names = [line.split("/", 1)[-1].strip() for line in out.splitlines() if line.strip()]
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def complete_namespaces(ctx, param, incomplete):
    return cluster_names(ctx, "namespaces", incomplete)


def complete_services(ctx, param, incomplete):
    return cluster_names(ctx, "services", incomplete, namespaced=True)


def complete_pods(ctx, param, incomplete):
    return cluster_names(ctx, "pods", incomplete, namespaced=True)


def complete_workloads(ctx, param, incomplete):
    """deploy/NAME, sts/NAME, ds/NAME as `kubectl get -o name` prints them, shortened."""
    from click.shell_completion import CompletionItem

    short = {"deployment.apps": "deploy", "statefulset.apps": "sts", "daemonset.apps": "ds"}
    items = []
    for kind, alias in short.items():
        for item in cluster_names(ctx, kind.replace(".apps", "s.apps"), "", namespaced=True):
            value = f"{alias}/{item.value}"
            if value.startswith(incomplete):
                items.append(CompletionItem(value))
    return items


def render(pairs: list[tuple[str, str]]) -> str:
    lines = [f"{value}\t{help_text}" if help_text else value for value, help_text in pairs]
    lines.append(f":{NO_FILE_COMPLETION}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    words = sys.argv[1:] if argv is None else argv
    sys.stdout.write(render(candidates(words)))
    sys.exit(0)


if __name__ == "__main__":
    main()
