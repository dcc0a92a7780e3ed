"""What `canary run` tells people: progress lines, the measurement table, the dry-run schedule.
Pure functions of plain data (the JSON carries the same facts as numbers)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubectl_mesh.analysis.decision import Decision, Side, millis_text, percent_text, requests_text
from kubectl_mesh.analysis.promql import SideQueries, range_duration


@dataclass
class Measurement:
    at: float  # epoch seconds: the end of the interval measured
    step: int  # index
    steps: int
    weight: int
    canary: Side
    stable: Side
    decision: Decision
    queries: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"time": iso(self.at), "step": self.step + 1, "weight": self.weight,
                "canary": self.canary.as_dict(), "stable": self.stable.as_dict(),
                "decision": self.decision.result, "reasons": list(self.decision.reasons)}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def duration_text(seconds: float) -> str:
    return range_duration(max(seconds, 0.001)) if seconds >= 1 else f"{seconds:.1f}s"


def side_text(side: Side) -> str:
    return (f"{requests_text(side.requests)} req, success {percent_text(side.success_rate)}, "
            f"p99 {millis_text(side.p99_ms)}")


def measurement_line(m: Measurement) -> str:
    return (f"step {m.step + 1}/{m.steps} at {m.weight}%: canary {side_text(m.canary)} | "
            f"stable {side_text(m.stable)} -> {m.decision.result}: {m.decision.text}")


def waiting_line(step: int, steps: int, weight: int, left: float, last: Measurement | None) -> str:
    line = f"step {step + 1}/{steps}: canary {weight}%, stable {100 - weight}%; measuring in {duration_text(left)}"
    if last is not None:
        line += (f" (last: canary success {percent_text(last.canary.success_rate)}, "
                 f"p99 {millis_text(last.canary.p99_ms)}, {last.decision.result})")
    return line


TABLE_HEADER = (f"{'TIME':<9} {'STEP':<5} {'WEIGHT':>6}  {'CANARY REQ':>10} {'SUCCESS':>8} {'P99':>7}  "
                f"{'STABLE REQ':>10} {'SUCCESS':>8} {'P99':>7}  DECISION")


def table_row(m: Measurement) -> str:
    def cells(side: Side) -> str:
        return (f"{requests_text(side.requests):>10} {percent_text(side.success_rate):>8} "
                f"{millis_text(side.p99_ms) if side.p99_ms is None or side.p99_ms != float('inf') else '+Inf':>7}")

    return (f"{clock(m.at):<9} {f'{m.step + 1}/{m.steps}':<5} {f'{m.weight}%':>6}  {cells(m.canary)}  "
            f"{cells(m.stable)}  {m.decision.result}")


def schedule_lines(steps: tuple[int, ...], interval: float, failure_limit: int, queries: dict[str, SideQueries],
                   prometheus: str) -> list[str]:
    """The --dry-run view: when each decision is made, and the exact queries."""
    every = duration_text(interval)
    lines = [f"Schedule (one decision per interval of {every}; a failed or inconclusive interval holds the "
             f"step and measures again; {failure_limit} failed intervals roll back, {failure_limit} inconclusive "
             "in a row stop):"]
    for index, weight in enumerate(steps):
        lines.append(f"  step {index + 1}/{len(steps)}: canary {weight:>3}%, stable {100 - weight:>3}%  "
                     f"decided at +{duration_text(interval * (index + 1))} at the earliest")
    lines.append("")
    lines.append(f"Queries (Prometheus {prometheus}, each at the end of an interval):")
    for side, q in queries.items():
        lines.append(f"  {side} success rate: {q.success_rate}")
        lines.append(f"  {side} p99:          {q.p99}")
        lines.append(f"  {side} requests:     {q.requests}")
    return lines
