#!/usr/bin/env python3
"""`kubectl mesh verify` with a slow istioctl, against the guide's loop.

On the test API server: --workloads Deployments of --replicas pods each, meshed, and
an istioctl on PATH that takes --istioctl-seconds a call (it replays real istioctl
output from tests/data/istioctl). Alternates, pair by pair:

  A  kubectl-mesh verify NS                      (default settings; one pod per workload)
  B  the guide's loop: for every pod, istioctl x describe pod, then
     istioctl proxy-config routes, one after another     (the anchor)

Goal (issue 12): B/A >= 20 with the default settings. --parallel N,N,... measures
verify --parallel N too (once each per pair), to choose the default.

    .venv/bin/python benchmarks/verify_parallel.py [--workloads 50 --replicas 4] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

NS = "bench"
STANDIN = harness.ROOT / "tests" / "e2e" / "istioctl_standin.py"


def istioctl(directory: Path, seconds: float) -> Path:
    """An istioctl that takes `seconds` a call, then answers as the e2e tests' stand-in."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "istioctl"
    path.write_text(f"#!{sys.executable}\nimport time, runpy, sys\ntime.sleep({seconds})\n"
                    f"sys.argv[0] = {str(STANDIN)!r}\nrunpy.run_path({str(STANDIN)!r}, run_name='__main__')\n")
    path.chmod(0o755)
    return path


GUIDE_LOOP = """set -e
for pod in $(kubectl get pods -n "$1" -o jsonpath='{.items[*].metadata.name}'); do
  istioctl x describe pod "$pod" -n "$1" >/dev/null
  istioctl proxy-config routes "$pod.$1" >/dev/null
done
"""


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.add_argument("--workloads", type=int, default=50)
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--istioctl-seconds", type=float, default=0.3)
    p.add_argument("--parallel", default="", help="also measure verify --parallel N for these N (comma-separated)")
    p.set_defaults(repeat=3)
    args = p.parse_args(argv)
    workloads, replicas, repeat = (2, 1, 1) if args.smoke else (args.workloads, args.replicas, args.repeat)
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp, harness.Cluster(tmp) as c:
        c.cluster.load(harness.deployments(NS, workloads, replicas, labels={"istio-injection": "enabled"}))
        tools = Path(tmp) / "bin"
        istioctl(tools, args.istioctl_seconds)
        env = {**c.env, "PATH": f"{tools}{os.pathsep}{c.env['PATH']}",
               "ISTIOCTL_STANDIN_DATA": str(harness.ROOT / "tests" / "data" / "istioctl")}
        loop = Path(tmp) / "guide-loop.sh"
        loop.write_text(GUIDE_LOOP)
        verify = [*harness.PLUGIN, "verify", NS]
        print(f"cluster: {workloads} Deployments x {replicas} pods in {NS}, meshed; istioctl takes "
              f"{args.istioctl_seconds:g} s a call")
        print(f"A: {shlex.join(verify[-2:])}")
        extra = [int(n) for n in args.parallel.split(",") if n]
        more = {n: harness.Series(f"--parallel {n}") for n in extra}

        def plugin():
            for n in extra:
                more[n].runs.append(harness.run([*verify, "--parallel", str(n)], env=env, ok=(0, 1)))
            return harness.run(verify, env=env, ok=(0, 1))

        sa, sb = harness.pairs(plugin, lambda: harness.run(["bash", str(loop), NS], env=env), repeat, warmup=0)
        harness.report("verify with a slow istioctl", "kubectl-mesh verify NS (default settings)",
                       "the guide's loop: describe + routes per pod, in sequence", sa, sb,
                       goal="<= 0.05, i.e. >= 20x faster",
                       what=("wall",))
        speedup = [b / a for a, b in zip(sa.values("wall"), sb.values("wall"), strict=True)]
        print(f"  B/A wall {harness.spread(speedup, '{:.1f}')}x faster   (goal >= 20)")
        guide = statistics.median(sb.values("wall"))
        for n, series in more.items():
            print(f"  --parallel {n:2}: wall {harness.spread(series.values('wall'))} s, "
                  f"{guide / statistics.median(series.values('wall')):.1f}x faster than the guide's loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
