"""Run the test API server by hand:

    python -m tests.cluster --kubeconfig /tmp/kc [--load FILE.yaml ...] [--user NAME ...]
        [--native-sidecars] [--ready-after SECONDS] [--no-istio] [--gateway-api]
        [--service-proxy NS/NAME:PORT=127.0.0.1:PORT ...]

Prints the server URL, writes the kubeconfig and serves until interrupted (Ctrl-C). The
kubeconfig's current context is the cluster admin; each --user NAME adds a user holding only
what RBAC grants it (bind it with Roles and RoleBindings from --load or kubectl) and a context
of the same name: `kubectl --context NAME ...`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import yaml

from .cluster import TestCluster
from .errors import ApiError
from .service_proxy import parse_spec, proxy_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for the server")
    parser.add_argument("--context", default="test", help="context (and cluster/user) name (default: test)")
    parser.add_argument("--namespace", default=None, help="namespace of the kubeconfig context")
    parser.add_argument("--load", action="append", default=[], metavar="FILE.yaml",
                        help="preload the objects of a YAML file (repeatable)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME",
                        help="add a user (token NAME-token) and a context NAME (repeatable)")
    parser.add_argument("--native-sidecars", action="store_true", help="inject istio-proxy as a native sidecar")
    parser.add_argument("--ready-after", type=float, default=0.0, metavar="SECONDS",
                        help="pods become Ready this long after creation (default 0)")
    parser.add_argument("--no-istio", action="store_true", help="no Istio CRDs, istiod or injection")
    parser.add_argument("--gateway-api", action="store_true", help="serve the Gateway API CRDs")
    parser.add_argument("--proxy-never-ready", action="store_true", help="istio-proxy containers never get ready")
    parser.add_argument("--service-proxy", action="append", default=[], metavar="NS/NAME:PORT=127.0.0.1:PORT",
                        help="serve services/NAME:PORT/proxy from this loopback address (repeatable)")
    args = parser.parse_args(argv)
    try:
        proxied = [parse_spec(spec) for spec in args.service_proxy]
    except ValueError as e:
        parser.error(str(e))

    cluster = TestCluster(
        native_sidecars=args.native_sidecars, ready_after=args.ready_after,
        istio_installed=not args.no_istio, gateway_api=args.gateway_api,
        proxy_ready=not args.proxy_never_ready,
    )
    for name in args.user:
        if name in (args.context, cluster.user):
            print(f"error: --user {name}: that is the cluster admin's context", file=sys.stderr)
            return 2
        cluster.add_user(name, namespace=args.namespace)
    for f in args.load:
        try:
            cluster.load(Path(f).read_text(encoding="utf-8"))
        except (OSError, ApiError, yaml.YAMLError) as e:
            print(f"error: --load {f}: {getattr(e, 'message', e)}", file=sys.stderr)
            return 1
    for namespace, service, port, address in proxied:
        proxy_service(cluster, namespace, service, port, address)
    cluster.start()
    path = cluster.write_kubeconfig(args.kubeconfig, context=args.context, namespace=args.namespace)
    print(cluster.url, flush=True)
    print(f"kubeconfig written to {path}; Ctrl-C to stop", file=sys.stderr, flush=True)

    stop = threading.Event()
    # Explicit handlers: a shell starting us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
