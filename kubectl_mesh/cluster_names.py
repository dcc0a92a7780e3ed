"""Names from the cluster for shell completion: click's shell_complete callbacks.

Used by the global options (settings) and by the commands' arguments. The
cluster is asked with a short bound and the settings typed so far (context,
kubeconfig, namespace); when it does not answer, nothing is offered.
"""

from __future__ import annotations

CLUSTER_TIMEOUT = 2.0


def _runner(ctx):
    """The runner of the settings typed so far (the root context's object), else a plain one."""
    root = ctx.find_root() if ctx is not None else None
    settings = getattr(root, "obj", None)
    if hasattr(settings, "runner"):
        return settings.runner(dry_run=False, verbose=False), getattr(settings, "namespace", None)
    from kubectl_mesh.runner import Runner

    return Runner(), None


def cluster_names(ctx, resource: str, incomplete: str, *, namespaced: bool = False) -> list:
    """Names of `resource` from the cluster, for click's shell_complete callbacks."""
    from click.shell_completion import CompletionItem

    from kubectl_mesh import errors

    runner, namespace = _runner(ctx)
    args = ["get", resource, "-o", "name", f"--request-timeout={int(CLUSTER_TIMEOUT)}s"]
    if namespaced and namespace:
        args += ["-n", namespace]
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
