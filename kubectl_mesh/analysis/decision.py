"""One interval's measurement, judged: pass, fail or inconclusive.

- inconclusive: the canary received fewer than --min-requests requests in the interval, or
  Prometheus had no data (empty result, NaN): too little traffic to judge, never a pass;
- fail: the success rate is below --success-rate, or the p99 latency above --max-p99
  (both reported when both are off);
- pass: otherwise. A p99 that cannot be computed while requests were counted (no latency
  histogram) is inconclusive: a bound that cannot be checked is not met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class Thresholds:
    success_rate: float = 99.0  # percent, at least
    max_p99_ms: float = 500.0  # milliseconds, at most
    min_requests: int = 20  # to the canary, in one interval

    def as_dict(self) -> dict:
        return {"successRate": self.success_rate, "maxP99Ms": self.max_p99_ms, "minRequests": self.min_requests}


@dataclass(frozen=True)
class Side:
    """What Prometheus said about one side over the interval; None: no data."""

    requests: float | None = None
    success_rate: float | None = None
    p99_ms: float | None = None

    def as_dict(self) -> dict:
        return {"requests": _rounded(self.requests, 1), "successRate": _rounded(self.success_rate, 3),
                "p99Ms": _rounded(self.p99_ms, 1)}


@dataclass(frozen=True)
class Decision:
    result: str
    reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "; ".join(self.reasons)


def _rounded(value: float | None, digits: int):
    if value is None:
        return None
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return round(value, digits)


def percent_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}%" if value < 100 else "100%"


def millis_text(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "above the largest bucket"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def requests_text(value: float | None) -> str:
    return "0" if value is None else f"{value:.0f}"


def decide(canary: Side, thresholds: Thresholds, interval_text: str) -> Decision:
    requests = canary.requests or 0.0
    if requests <= 0 or requests < thresholds.min_requests:
        why = (f"fewer than --min-requests {thresholds.min_requests}" if thresholds.min_requests
               else "no traffic to judge")
        return Decision(INCONCLUSIVE, [f"{requests_text(canary.requests)} requests to the canary in "
                                       f"{interval_text}, {why}"])
    if canary.success_rate is None:
        return Decision(INCONCLUSIVE, [f"no success rate for the canary in {interval_text} (no data)"])
    failures = []
    if canary.success_rate < thresholds.success_rate:
        failures.append(f"success rate {percent_text(canary.success_rate)} is below "
                        f"{percent_text(thresholds.success_rate)}")
    if canary.p99_ms is not None and canary.p99_ms > thresholds.max_p99_ms:
        failures.append(f"p99 latency {millis_text(canary.p99_ms)} is above {millis_text(thresholds.max_p99_ms)}")
    if failures:
        return Decision(FAIL, failures)
    if canary.p99_ms is None:
        return Decision(INCONCLUSIVE, [f"no p99 latency for the canary in {interval_text} "
                                       "(no istio_request_duration_milliseconds_bucket series)"])
    return Decision(PASS, [f"success rate {percent_text(canary.success_rate)} >= "
                           f"{percent_text(thresholds.success_rate)}, p99 {millis_text(canary.p99_ms)} <= "
                           f"{millis_text(thresholds.max_p99_ms)}"])
