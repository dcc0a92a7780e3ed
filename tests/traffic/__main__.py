"""Run the traffic simulator by hand:

    python -m tests.traffic --kubeconfig KC --listen 127.0.0.1:PORT [--rps N]
        [--error-rate VERSION=FRACTION ...] [--latency VERSION=MS ...] [--service NS/NAME ...]

Serves Istio's request metrics on http://ADDRESS/metrics for Prometheus to scrape, until
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import TrafficSimulator


def _pairs(values: list[str], what: str, parser: argparse.ArgumentParser, maximum: float | None = None) -> dict:
    result = {}
    for value in values:
        version, sep, number = value.partition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = -1.0
        if not sep or not version or parsed < 0 or (maximum is not None and parsed > maximum):
            parser.error(f"{what} {value!r}: expected VERSION=NUMBER" + (f" (0-{maximum:g})" if maximum else ""))
        result[version] = parsed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the (test) API server to read routes from")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where to serve /metrics")
    parser.add_argument("--rps", type=float, default=50.0, help="requests per second to each Service (default 50)")
    parser.add_argument("--error-rate", action="append", default=[], metavar="VERSION=FRACTION",
                        help="fraction of a version's requests answered 500 (repeatable)")
    parser.add_argument("--latency", action="append", default=[], metavar="VERSION=MS",
                        help="a version's latency in milliseconds (repeatable; default 20)")
    parser.add_argument("--service", action="append", default=[], metavar="NS/NAME",
                        help="only these Services (default: all outside system namespaces)")
    args = parser.parse_args(argv)
    if args.rps < 0:
        parser.error("--rps must be 0 or more")
    simulator = TrafficSimulator(
        args.kubeconfig, rps=args.rps, listen=args.listen, services=args.service,
        error_rates=_pairs(args.error_rate, "--error-rate", parser, 1.0),
        latencies=_pairs(args.latency, "--latency", parser),
    )
    try:
        simulator.start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"http://{simulator.address}/metrics", flush=True)
    print("serving Istio metrics; Ctrl-C to stop", file=sys.stderr, flush=True)
    stop = threading.Event()
    # Explicit handlers: a shell starting us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
