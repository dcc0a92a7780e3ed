"""The PromQL of a canary's analysis, on Istio's standard request metrics.

As Flagger's Istio provider writes them (request-success-rate and request-duration), for one
side of the canary (its workloads, in the service's namespace) over one interval:

    success rate = sum(rate(istio_requests_total{reporter="destination",
                     destination_workload_namespace="NS", destination_workload=~"W",
                     response_code!~"5.*"}[I]))
                 / sum(rate(istio_requests_total{...same, without response_code...}[I])) * 100
    p99          = histogram_quantile(0.99, sum(rate(
                     istio_request_duration_milliseconds_bucket{...}[I])) by (le))
    requests     = sum(increase(istio_requests_total{...}[I]))

`reporter="destination"` counts what the server's sidecar saw, so a request is counted
once, whatever the client. Names go into the queries escaped; workload names are matched
as a regular expression of exact alternatives (Prometheus anchors it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REQUESTS = "istio_requests_total"
DURATION_BUCKETS = "istio_request_duration_milliseconds_bucket"
_RE2_SPECIAL = re.compile(r"[\\.+*?()|\[\]{}^$]")


def string_literal(value: str) -> str:
    """A PromQL double-quoted string (Go escaping)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def exact_alternatives(names: list[str]) -> str:
    """A regular expression matching exactly these names (RE2 syntax; Prometheus anchors it)."""
    return "|".join(_RE2_SPECIAL.sub(r"\\\g<0>", name) for name in sorted(set(names)))


def range_duration(seconds: float) -> str:
    """A Prometheus range duration: 1m, 90s, 1h30m, 1500ms."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError("a range must be longer than 0")
    if millis % 1000:
        return f"{millis}ms"
    total = millis // 1000
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)


@dataclass(frozen=True)
class SideQueries:
    """The three queries for one side (canary or stable) of the split."""

    success_rate: str
    p99: str
    requests: str

    def as_dict(self) -> dict:
        return {"successRate": self.success_rate, "p99": self.p99, "requests": self.requests}


def selector(namespace: str, workloads: list[str], *extra: str) -> str:
    matchers = ['reporter="destination"',
                f"destination_workload_namespace={string_literal(namespace)}",
                f"destination_workload=~{string_literal(exact_alternatives(workloads))}",
                *extra]
    return "{" + ", ".join(matchers) + "}"


def side_queries(namespace: str, workloads: list[str], interval_seconds: float) -> SideQueries:
    if not workloads:
        raise ValueError("no workloads to measure")
    window = f"[{range_duration(interval_seconds)}]"
    every = selector(namespace, workloads)
    ok = selector(namespace, workloads, 'response_code!~"5.*"')
    return SideQueries(
        success_rate=f"sum(rate({REQUESTS}{ok}{window})) / sum(rate({REQUESTS}{every}{window})) * 100",
        p99=f"histogram_quantile(0.99, sum(rate({DURATION_BUCKETS}{every}{window})) by (le))",
        requests=f"sum(increase({REQUESTS}{every}{window}))",
    )
