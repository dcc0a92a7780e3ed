"""What every benchmark script shares: run two commands pair by pair, report medians,
ranges and the ratio against the anchor measured in the same run.

Each run is a child process whose own resource usage (os.wait4) gives its CPU time
(user + system) and peak memory; wall time is taken around it. The two commands
alternate (A B A B ...), so that a machine whose speed drifts (shared cores) moves
both sides of each pair alike, and each ratio is taken within one pair.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv the script runs in: kubectl-mesh is installed there
# The plugin measured: the installed one, or another command line (to compare two versions,
# e.g. BENCH_PLUGIN="env PYTHONPATH=/tmp/old .venv/bin/python -m kubectl_mesh").
PLUGIN = os.environ.get("BENCH_PLUGIN", "").split() or [str(BIN / "kubectl-mesh")]
# Where kubectl finds `kubectl-mesh` for the benchmarks that go through kubectl.
PLUGIN_DIR = os.environ.get("BENCH_PLUGIN_DIR") or str(BIN)


@dataclass
class Run:
    wall: float
    cpu: float
    user: float
    sys: float
    peak_mb: float
    code: int
    stdout: bytes = b""


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)

    def values(self, what: str) -> list[float]:
        return [getattr(r, what) for r in self.runs]


def run(argv: list[str], *, env: dict | None = None, keep_output: bool = False, ok=(0,), stdin=None) -> Run:
    """One child process: its own CPU time and peak RSS (from wait4), and wall time.
    Its stdout goes to a temporary file (kept when asked), stderr to another."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env,
                                stdin=subprocess.DEVNULL if stdin is None else stdin)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if code not in ok:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-3000:])
            raise SystemExit(f"{' '.join(map(str, argv))} exited {code}")
        output = b""
        if keep_output:
            out.seek(0)
            output = out.read()
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024,
               code, output)


def pairs(a, b, repeat: int, warmup: int = 1) -> tuple[Series, Series]:
    """Call a() and b() (each returning a Run) alternately: `warmup` uncounted pairs, then `repeat`."""
    sa, sb = Series("A"), Series("B")
    for i in range(warmup + repeat):
        ra, rb = a(), b()
        if i >= warmup:
            sa.runs.append(ra)
            sb.runs.append(rb)
    return sa, sb


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    """median [min-max]"""
    if not values:
        return "n/a"
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def ratios(sa: Series, sb: Series, what: str) -> list[float]:
    return [x / y if y else float("inf") for x, y in zip(sa.values(what), sb.values(what), strict=True)]


def load_line() -> str:
    """The machine's load as the benchmark started (its 2 cores are shared)."""
    one, five, fifteen = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.strip().split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(doc.strip().split("\n\n")[1:]))
    p.add_argument("--repeat", type=int, default=5, help="counted pairs (default 5)")
    p.add_argument("--smoke", action="store_true", help="a tiny size and one pair: proves the script works")
    return p


def report(title: str, a_label: str, b_label: str, sa: Series, sb: Series, *, goal: str,
           what: tuple[str, ...] = ("cpu", "wall")) -> dict[str, float]:
    """Print each side's figures and the ratios A/B; return the median ratios."""
    print(f"\n{title}")
    print(f"  A: {a_label}")
    print(f"  B: {b_label} (the anchor)")
    medians = {}
    for key in what:
        print(f"  {key:5} s   A {spread(sa.values(key))}   B {spread(sb.values(key))}")
    for key in what:
        values = ratios(sa, sb, key)
        medians[key] = statistics.median(values)
        print(f"  A/B {key:5} {spread(values, '{:.2f}')}x   (goal {goal})")
    print(f"  peak MB  A {spread(sa.values('peak_mb'), '{:.0f}')}   B {spread(sb.values('peak_mb'), '{:.0f}')}")
    return medians


# -- the test API server, for the online benchmarks ------------------------------------
def deployments(namespace: str, count: int, replicas: int, *, labels: dict | None = None) -> list[dict]:
    """A namespace (with `labels`) and `count` Deployments of `replicas` pods each."""
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}]
    for i in range(count):
        name = f"app-{i:02d}"
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                     "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                              "template": {"metadata": {"labels": {"app": name, "version": "v1"}},
                                           "spec": {"containers": [{"name": "app", "image": f"{name}:1"}]}}}})
    return objs


class Cluster:
    """The project's test API server (tests/cluster), a kubeconfig and the environment
    the plugin and kubectl run in."""

    def __init__(self, tmp: str, **options):
        sys.path.insert(0, str(ROOT))
        from tests.cluster import TestCluster

        self.cluster = TestCluster(**options).start()
        self.kubeconfig = self.cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def close(self) -> None:
        self.cluster.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
