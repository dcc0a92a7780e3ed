#!/usr/bin/env python3
"""`kubectl mesh enable NS` against the guide's commands, on the test API server.

For each pair, two fresh namespaces each holding --deployments Deployments of --replicas
pods (not yet in the mesh; pods become ready --ready-after seconds after they start),
then:

  A  kubectl-mesh enable NS --no-istioctl
  B  the guide's way: kubectl label namespace NS istio-injection=enabled;
     kubectl rollout restart deployment -n NS; kubectl rollout status each  (the anchor)

Goal (issue 12): A/B <= 1.2, at 20 Deployments x 3 replicas and at 50.

    .venv/bin/python benchmarks/enable_restart.py [--deployments 20,50] [--replicas 3] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

GUIDE = """set -e
kubectl label namespace "$1" istio-injection=enabled >/dev/null
kubectl rollout restart deployment -n "$1" >/dev/null
for d in $(kubectl get deployments -n "$1" -o name); do
  kubectl rollout status "$d" -n "$1" >/dev/null
done
"""


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.add_argument("--deployments", default="20,50")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--ready-after", type=float, default=1.0)
    p.set_defaults(repeat=3)
    args = p.parse_args(argv)
    sizes = [2] if args.smoke else [int(n) for n in args.deployments.split(",")]
    repeat, replicas = (1, 1) if args.smoke else (args.repeat, args.replicas)
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp, \
            harness.Cluster(tmp, ready_after=0.0 if args.smoke else args.ready_after) as c:
        guide = Path(tmp) / "guide.sh"
        guide.write_text(GUIDE)
        names = (f"bench-{i}" for i in itertools.count())
        for count in sizes:
            def fresh(count=count):
                ns = next(names)
                c.cluster.load(harness.deployments(ns, count, replicas))
                return ns

            sa, sb = harness.pairs(
                lambda: harness.run([*harness.PLUGIN, "enable", fresh(), "--no-istioctl"], env=c.env),
                lambda: harness.run(["bash", str(guide), fresh()], env=c.env), repeat)
            harness.report(f"enable on {count} Deployments x {replicas} replicas (pods ready after "
                           f"{args.ready_after:g} s)", "kubectl-mesh enable NS --no-istioctl",
                           "kubectl label; kubectl rollout restart deployment -n NS; kubectl rollout status each",
                           sa, sb, goal="<= 1.2", what=("wall",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
