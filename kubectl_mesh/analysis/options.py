"""The values `canary run` takes, parsed strictly (ASCII digits only) into plain numbers.

Each parser returns the value or raises ValueError with the one-line message the CLI shows
(exit 2).
"""

from __future__ import annotations

import re
from decimal import Decimal

_INT = re.compile(r"^[0-9]{1,3}$")
_NUMBER = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,6})?$")
_DURATION = re.compile(r"^(?:[0-9]{1,6}(?:\.[0-9]{1,6})?(?:h|ms|m|s))+$")
_DURATION_PART = re.compile(r"([0-9]{1,6}(?:\.[0-9]{1,6})?)(h|ms|m|s)")
_UNIT = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}
MIN_INTERVAL = 1.0  # seconds: shorter than any scrape interval could measure
MAX_INTERVAL = 24 * 3600.0


def steps(value: str) -> tuple[int, ...]:
    """`10,25,50,100`: canary weights, rising, each 1-100."""
    parts = [p.strip() for p in (value or "").split(",")]
    if not parts or any(not _INT.match(p) for p in parts):
        raise ValueError(f'invalid --steps "{value}": expected rising weights separated by commas, e.g. 10,25,50,100')
    weights = tuple(int(p) for p in parts)
    if any(not 0 < w <= 100 for w in weights):
        raise ValueError(f'invalid --steps "{value}": each weight must be between 1 and 100')
    if any(b <= a for a, b in zip(weights, weights[1:], strict=False)):
        raise ValueError(f'invalid --steps "{value}": weights must rise, e.g. 10,25,50,100')
    return weights


def seconds(value: str, what: str) -> float:
    """A duration such as 1m, 30s, 1m30s, 500ms, in seconds."""
    if not isinstance(value, str) or not _DURATION.match(value):
        raise ValueError(f'invalid {what} "{value}": use a number with a unit, e.g. 30s, 1m, 500ms')
    return float(sum((Decimal(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value)), Decimal(0)))


def interval(value: str) -> float:
    found = seconds(value, "--interval")
    if not MIN_INTERVAL <= found <= MAX_INTERVAL:
        raise ValueError(f'invalid --interval "{value}": must be between 1s and 24h')
    return found


def max_p99_ms(value: str) -> float:
    found = seconds(value, "--max-p99") * 1000
    if found <= 0:
        raise ValueError(f'invalid --max-p99 "{value}": must be more than 0')
    return found


def success_rate(value: str) -> float:
    """A percentage, 0-100, decimals allowed (99.9)."""
    text = str(value).strip()
    if not _NUMBER.match(text) or float(text) > 100:
        raise ValueError(f'invalid --success-rate "{value}": expected a percentage between 0 and 100, e.g. 99')
    return float(text)


def whole(value, what: str, minimum: int, maximum: int) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,7}", text) or not minimum <= int(text) <= maximum:
        raise ValueError(f'invalid {what} "{value}": expected a whole number between {minimum} and {maximum}')
    return int(text)
