#!/usr/bin/env python3
"""`kubectl mesh diagnose -A` on a cluster against `diagnose -f` on that cluster's dump.

Starts the project's test API server (tests/cluster) holding a realistic snapshot of
--pods pods (benchmarks/realistic.py), stored as the server would hold them (directly,
so that its controllers do not add pods of their own), and dumps it with the same
`kubectl get ... -A -o json` the plugin runs. Then alternates, pair by pair:

  A  kubectl-mesh diagnose -A -o json            (reads the cluster through kubectl)
  B  kubectl-mesh diagnose -f DUMP -o json       (the anchor)
  C  the plugin's kubectl reads alone, to a file (what A waits for: the server and kubectl)

and prints A/B (goal <= 1.2) and (A - C)/B: the plugin's own part of the online path
against the offline one. The test server is Python and kubectl decodes and re-encodes
every object, so C is most of A here; a real API server answers faster.

    .venv/bin/python benchmarks/diagnose_online.py [--pods 10000] [--repeat 5] [--smoke]
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import harness  # noqa: E402
import realistic  # noqa: E402

from tests.cluster import TestCluster  # noqa: E402


def store(cluster: TestCluster, objects) -> int:
    """Put objects straight into the server's store: as created and reconciled long ago."""
    count = 0
    with cluster.core.lock:
        for obj in objects:
            rt, _ = cluster._rt_for(obj)
            if not rt.namespaced:
                obj["metadata"].pop("namespace", None)
            cluster.core.store.put(rt.key, obj)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.add_argument("--pods", type=int, default=10_000)
    args = p.parse_args(argv)
    pods, repeat = (100, 1) if args.smoke else (args.pods, args.repeat)
    warmup = 1 if args.smoke or args.pods < 5000 else 0  # a 10,000-pod read takes minutes here
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp, TestCluster() as cluster:
        stored = store(cluster, realistic.objects(pods))
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        online = [*harness.PLUGIN, "diagnose", "-A", "-o", "json"]
        probe = subprocess.run([*online, "-v"], capture_output=True, text=True, env=env)
        if probe.returncode not in (0, 1):
            raise SystemExit(f"diagnose -A failed ({probe.returncode}): {probe.stderr[-2000:]}")
        reads = [shlex.split(line[2:]) for line in probe.stderr.splitlines() if line.startswith("+ kubectl get")]
        batched = next(r for r in reads if "-A" in r)  # the one batched read of every namespace
        dump = Path(tmp) / "dump.json"
        with open(dump, "wb") as out:
            subprocess.run(batched, stdout=out, env=env, check=True)
        print(f"cluster: {stored} objects stored ({pods} realistic pods); dump {dump.stat().st_size / 2**20:.0f} MB")
        print("the plugin's reads: " + "; ".join(shlex.join(r) for r in reads))
        kubectl_alone = ["sh", "-c", "".join(f'{shlex.join(r)} > "$0"; ' for r in reads),
                         str(Path(tmp) / "out.json")]
        sa, sb = harness.pairs(lambda: harness.run(online, env=env, ok=(0, 1)),
                               lambda: harness.run([*harness.PLUGIN, "diagnose", "-f", str(dump), "-o", "json"],
                                                   env=env, ok=(0, 1)), repeat, warmup=warmup)
        sc = harness.Series("C", [harness.run(kubectl_alone, env=env) for _ in range(repeat)])
        harness.report(f"diagnose -A on a cluster of {pods} realistic pods", "kubectl-mesh diagnose -A -o json",
                       "kubectl-mesh diagnose -f DUMP -o json", sa, sb, goal="<= 1.2")
        c_wall = statistics.median(sc.values("wall"))
        own = [(a - c_wall) / b for a, b in zip(sa.values("wall"), sb.values("wall"), strict=True)]
        print(f"  C (kubectl get alone, to a file) wall s {harness.spread(sc.values('wall'))}")
        print(f"  (A - C)/B wall {harness.spread(own, '{:.2f}')}x   (the plugin's part of the online path)")
        c_cpu = statistics.median(sc.values("cpu"))
        own_cpu = [(a - c_cpu) / b for a, b in zip(sa.values("cpu"), sb.values("cpu"), strict=True)]
        print(f"  C cpu s {harness.spread(sc.values('cpu'))}; (A - C)/B cpu {harness.spread(own_cpu, '{:.2f}')}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
