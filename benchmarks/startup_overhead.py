#!/usr/bin/env python3
"""The fixed overhead of an online command: `kubectl mesh` minus the kubectl calls it makes.

On the test API server (a namespace of 3 Deployments x 2 pods, meshed), each command is
run once with -v to learn the kubectl calls it makes; then, pair by pair:

  A  kubectl-mesh COMMAND
  B  those kubectl calls, one after another, from a shell script   (the anchor)

and A - B is what the plugin adds: Python's start, imports, planning, rendering.
Goal (issue 12): <= 100 ms.

    .venv/bin/python benchmarks/startup_overhead.py [--repeat 10] [--smoke]
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

NS = "bench"
COMMANDS = [["status", NS], ["verify", NS, "--no-istioctl"], ["diagnose", NS], ["mtls", NS, "status"]]


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.set_defaults(repeat=10)
    args = p.parse_args(argv)
    repeat = 1 if args.smoke else args.repeat
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp, harness.Cluster(tmp) as c:
        c.cluster.load(harness.deployments(NS, 3, 2, labels={"istio-injection": "enabled"}))
        for command in COMMANDS[:1] if args.smoke else COMMANDS:
            argv_a = [*harness.PLUGIN, *command]
            probe = subprocess.run([*argv_a, "-v"], capture_output=True, text=True, env=c.env)
            calls = [line[2:] for line in probe.stderr.splitlines() if line.startswith("+ kubectl ")]
            script = Path(tmp) / f"calls-{command[0]}.sh"
            script.write_text("".join(f"{call} >/dev/null\n" for call in calls))
            sa, sb = harness.pairs(lambda argv_a=argv_a: harness.run(argv_a, env=c.env, ok=(0, 1)),
                                   lambda script=script: harness.run(["sh", str(script)], env=c.env), repeat)
            harness.report(f"kubectl-mesh {shlex.join(command)}: {len(calls)} kubectl calls",
                           shlex.join(command), f"its {len(calls)} kubectl calls from a shell script", sa, sb,
                           goal="A - B <= 0.100 s")
            extra = [a - b for a, b in zip(sa.values("wall"), sb.values("wall"), strict=True)]
            extra_cpu = [a - b for a, b in zip(sa.values("cpu"), sb.values("cpu"), strict=True)]
            print(f"  A - B wall {harness.spread(extra)} s, cpu {harness.spread(extra_cpu)} s   (goal <= 0.100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
