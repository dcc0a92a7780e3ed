#!/usr/bin/env python3
"""`kubectl mesh diagnose -f` on a cluster's dump, against stdlib json.loads of the same file.

Writes a realistic snapshot (benchmarks/realistic.py: pods built from Istio's injected
specs with what the API server and kubelet add) of --pods pods as `kubectl get -A -o json`
prints it, then alternates, pair by pair:

  A  kubectl-mesh diagnose -f FILE -o json
  B  python: gc.disable(); json.loads(open(FILE, "rb").read())   (the anchor)

and prints CPU and wall time of each, the ratios A/B, and A's peak memory against the
file's size. Goals (issue 12): A/B <= 1.0 at 10,000 pods, peak <= 1.5x the file.
--compact uses the first benchmark's 1.2 KB pods instead (a second, named figure).

    .venv/bin/python benchmarks/diagnose_file.py [--pods 10000] [--compact] [--repeat 5] [--smoke]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import realistic  # noqa: E402

ANCHOR = "import gc, json, sys; gc.disable(); json.loads(open(sys.argv[1], 'rb').read())"


def diagnose(path: str, *extra: str) -> list[str]:
    return [*harness.PLUGIN, "diagnose", "-f", path, "-o", "json", *extra]


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--compact", action="store_true", help="the first benchmark's 1.2 KB pods")
    args = p.parse_args(argv)
    pods, repeat = (200, 1) if args.smoke else (args.pods, args.repeat)
    print(harness.load_line())
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        path = os.path.join(tmp, "snapshot.json")
        counts = realistic.write(path, pods, compact=args.compact)
        size_mb = os.path.getsize(path) / 2**20
        kind = "compact (1.2 KB) pods" if args.compact else "realistic pods"
        print(f"snapshot: {counts.get('Pod', 0)} {kind}, {counts.get('Service', 0)} services, "
              f"{counts.get('DestinationRule', 0)} DestinationRules, {counts.get('VirtualService', 0)} "
              f"VirtualServices, {sum(counts.values())} objects, {size_mb:.0f} MB of JSON")
        check = harness.run(diagnose(path), keep_output=True, ok=(0, 1))
        doc = json.loads(check.stdout)
        print(f"findings: {doc['counts']} (exit {check.code}), {len(check.stdout) / 2**20:.1f} MB of output")
        sa, sb = harness.pairs(lambda: harness.run(diagnose(path), ok=(0, 1)),
                               lambda: harness.run([sys.executable, "-c", ANCHOR, path]), repeat)
        harness.report(f"diagnose -f on {counts.get('Pod', 0)} {kind}", "kubectl-mesh diagnose -f FILE -o json",
                       "json.loads(FILE) with GC off", sa, sb, goal="<= 1.0")
        peaks = [r.peak_mb / size_mb for r in sa.runs]
        print(f"  A's peak / file size {harness.spread(peaks, '{:.2f}')}x   (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
