#!/usr/bin/env python3
"""`kubectl mesh --help` (and -h, no arguments, first-word completion) against
`kubectl version --client`, both through kubectl.

Alternates each plugin invocation with the anchor, pair by pair; kubectl finds the
plugin on PATH (the venv's bin first). Goal (issue 12): <= 1.5x.

    .venv/bin/python benchmarks/startup_help.py [--repeat 10] [--smoke]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

CASES = [
    ("kubectl mesh --help", ["kubectl", "mesh", "--help"]),
    ("kubectl mesh -h", ["kubectl", "mesh", "-h"]),
    ("kubectl mesh (no arguments)", ["kubectl", "mesh"]),
    ("kubectl __complete mesh '' (first word)", ["kubectl", "__complete", "mesh", ""]),
]
ANCHOR = ["kubectl", "version", "--client"]


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    p.set_defaults(repeat=10)
    args = p.parse_args(argv)
    repeat = 1 if args.smoke else args.repeat
    env = {**os.environ, "PATH": f"{harness.PLUGIN_DIR}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "80"}
    print(harness.load_line())
    for label, argv_a in CASES:
        sa, sb = harness.pairs(lambda argv_a=argv_a: harness.run(argv_a, env=env, ok=(0, 2)),
                               lambda: harness.run(ANCHOR, env=env), repeat)
        harness.report(label, " ".join(argv_a), " ".join(ANCHOR), sa, sb, goal="<= 1.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
