#!/usr/bin/env python3
"""How `kubectl mesh diagnose -f` grows from 10,000 to 50,000 realistic pods.

Writes two realistic snapshots (benchmarks/realistic.py), SMALL and 5x SMALL pods with
everything else in proportion, and alternates diagnose -f on each, pair by pair. The
growth is the ratio of their CPU times; stdlib json.loads of the same two files (GC
off) is measured alike as the anchor: parsing alone grows a little over 5x. Goal
(issue 12): diagnose grows <= 5.5x.

    .venv/bin/python benchmarks/diagnose_growth.py [--pods 10000] [--factor 5] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import realistic  # noqa: E402
from diagnose_file import ANCHOR, diagnose  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--factor", type=int, default=5)
    p.set_defaults(repeat=3)
    args = p.parse_args(argv)
    small, repeat = (200, 1) if args.smoke else (args.pods, args.repeat)
    large = small * args.factor
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        paths = {}
        for pods in (small, large):
            paths[pods] = os.path.join(tmp, f"snapshot-{pods}.json")
            realistic.write(paths[pods], pods)
            print(f"snapshot: {pods} realistic pods, {os.path.getsize(paths[pods]) / 2**20:.0f} MB of JSON")
        ds, dl = harness.pairs(lambda: harness.run(diagnose(paths[small]), ok=(0, 1)),
                               lambda: harness.run(diagnose(paths[large]), ok=(0, 1)), repeat)
        js, jl = harness.pairs(lambda: harness.run([sys.executable, "-c", ANCHOR, paths[small]]),
                               lambda: harness.run([sys.executable, "-c", ANCHOR, paths[large]]), repeat)
        print(f"\ndiagnose -f, {small} -> {large} pods")
        for label, a, b in (("diagnose -f", ds, dl), ("json.loads (anchor)", js, jl)):
            print(f"  {label:20} cpu s {harness.spread(a.values('cpu'))} -> {harness.spread(b.values('cpu'))}"
                  f"   peak MB {statistics.median(a.values('peak_mb')):.0f} -> "
                  f"{statistics.median(b.values('peak_mb')):.0f}")
        growth = harness.ratios(dl, ds, "cpu")
        anchor = harness.ratios(jl, js, "cpu")
        print(f"  growth of diagnose cpu  {harness.spread(growth, '{:.2f}')}x   (goal <= 5.5)")
        print(f"  growth of json.loads    {harness.spread(anchor, '{:.2f}')}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
