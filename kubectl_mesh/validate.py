"""Input validation, done before any kubectl or istioctl call.

Each validator returns the normalised value or raises UsageError with a
one-line message naming the bad value, so the CLI exits 2 and never shows a
traceback. The rules are Kubernetes' own (apimachinery's validation package)
and Istio's (durations as protobuf Durations in Go syntax).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from kubectl_mesh.errors import UsageError

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Numbers are ASCII digits only: Python's \d (and int()) also take ٣ or １, which
# kubectl and the API server do not.
_DURATION = re.compile(r"^(?:([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns))+$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)")
# The longest --timeout: a day, past which a value is a typo (and 1e400s an overflow).
MAX_TIMEOUT_SECONDS = 24 * 3600
# The largest quantity Kubernetes represents (int64 of the base unit).
MAX_QUANTITY = Decimal(2**63 - 1)
_DURATION_SECONDS = {
    "h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001"),
    "us": Decimal("0.000001"), "µs": Decimal("0.000001"), "ns": Decimal("0.000000001"),
}


def namespace(value: str) -> str:
    """A namespace name: an RFC 1123 label."""
    return dns1123_label(value, what="namespace")


def dns1123_label(value: str, what: str = "name") -> str:
    if not value or len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise UsageError(
            f'invalid {what} "{value}": must be 1-63 lowercase letters, digits or "-", '
            "starting and ending with a letter or digit (RFC 1123 label)"
        )
    return value


def resource_name(value: str, what: str = "name") -> str:
    """An object name such as a Deployment's or a Pod's: an RFC 1123 subdomain."""
    if not value or len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise UsageError(
            f'invalid {what} "{value}": must be lowercase letters, digits, "-" or ".", '
            "starting and ending with a letter or digit (RFC 1123 subdomain)"
        )
    return value


def revision(value: str) -> str:
    """An Istio control-plane revision (the istio.io/rev label value)."""
    return dns1123_label(value, what="revision")


def label_key(value: str) -> str:
    """A label key: optional DNS subdomain prefix and a name of at most 63 characters."""
    prefix, _, name = value.rpartition("/")
    if "/" in value and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        raise UsageError(f'invalid label key "{value}": prefix must be a DNS subdomain')
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise UsageError(
            f'invalid label key "{value}": name must be 1-63 letters, digits, "-", "_" or ".", '
            "starting and ending with a letter or digit"
        )
    return value


def label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise UsageError(
            f'invalid label value "{value}": must be at most 63 letters, digits, "-", "_" or ".", '
            "starting and ending with a letter or digit"
        )
    return value


def duration_seconds(value: str) -> Decimal:
    """Seconds in a Go-style duration such as 30s, 1m30s, 500ms."""
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise UsageError(f'invalid duration "{value}": use a number with a unit, e.g. 30s, 1m, 500ms')
    return sum(
        (Decimal(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION_PART.findall(value)),
        Decimal(0),
    )


def duration(value: str, *, minimum_ms: int = 1) -> str:
    """A duration Istio accepts: Go syntax, at least `minimum_ms` milliseconds."""
    seconds = duration_seconds(value)
    if seconds * 1000 < minimum_ms:
        raise UsageError(f'invalid duration "{value}": must be at least {minimum_ms}ms')
    return value


def timeout_seconds(value: str | float) -> float:
    """The --timeout option: a duration (30s, 5m) or plain seconds; must be positive."""
    text = str(value)
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        seconds = Decimal(text)
    else:
        seconds = duration_seconds(text)
    if seconds <= 0:
        raise UsageError(f'invalid timeout "{value}": must be greater than zero')
    if seconds > MAX_TIMEOUT_SECONDS:
        raise UsageError(f'invalid timeout "{value}": must be at most 24h')
    return float(seconds)


def integer(value, *, what: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer in a range; rejects floats such as 10.5 and booleans."""
    if isinstance(value, bool):
        raise UsageError(f'invalid {what} "{value}": must be an integer')
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise UsageError(f'invalid {what} "{value}": must be an integer')
        number = int(text)
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        if maximum is None:
            bound = f"at least {minimum}"
        elif minimum is None:
            bound = f"at most {maximum}"
        else:
            bound = f"between {minimum} and {maximum}"
        raise UsageError(f'invalid {what} "{value}": must be {bound}')
    return number


def weight(value) -> int:
    return integer(value, what="weight", minimum=0, maximum=100)


def percent(value, what: str = "percentage") -> int:
    return integer(value, what=what, minimum=0, maximum=100)


# Kubernetes resource quantities (apimachinery resource.Quantity).
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}


def parse_quantity(value: str) -> Decimal:
    """The value of a Kubernetes quantity such as 100m, 0.5, 128Mi, 1G, 1e3."""
    match = _QUANTITY.fullmatch(str(value).strip()) if value is not None else None
    if not match:
        raise UsageError(
            f'invalid quantity "{value}": use a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi'
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise UsageError(f'invalid quantity "{value}"') from None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        amount = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        amount = number * _DECIMAL[suffix]
    else:
        exponent = int(suffix[1:])
        if abs(exponent) > 30:  # far past int64 either way; not worth the arithmetic
            raise UsageError(f'invalid quantity "{value}": too large or too small for Kubernetes')
        amount = number * (Decimal(10) ** exponent)
    if abs(amount) > MAX_QUANTITY:
        raise UsageError(f'invalid quantity "{value}": too large for Kubernetes (at most 2^63-1)')
    return amount


def quantity(value: str, what: str = "quantity") -> str:
    """A non-negative quantity; returns it unchanged for the annotation."""
    try:
        amount = parse_quantity(value)
    except UsageError as exc:
        raise UsageError(exc.message.replace("invalid quantity", f"invalid {what}", 1)) from None
    if amount < 0:
        raise UsageError(f'invalid {what} "{value}": must not be negative')
    return str(value).strip()


def quantity_at_most(request: str, limit: str, what: str) -> None:
    """Kubernetes rejects a request above its limit; so do we, before any call."""
    if parse_quantity(request) > parse_quantity(limit):
        raise UsageError(f"invalid {what}: request {request} is greater than limit {limit}")


def workload_ref(value: str, kind: str | None = None) -> tuple[str, str]:
    """`deploy/NAME`, `deployment/NAME`, `statefulset/NAME`, ... or NAME with --kind.

    Returns (Kind, name) with Kind one of Deployment, StatefulSet, DaemonSet.
    """
    kinds = {
        "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
        "deployment.apps": "Deployment", "deployments.apps": "Deployment",
        "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
        "statefulset.apps": "StatefulSet", "statefulsets.apps": "StatefulSet",
        "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
        "daemonset.apps": "DaemonSet", "daemonsets.apps": "DaemonSet",
    }
    if "/" in value:
        kind_text, _, name = value.partition("/")
        if kind is not None and kinds.get(kind.lower()) != kinds.get(kind_text.lower()):
            raise UsageError(f'workload "{value}" contradicts --kind {kind}')
    else:
        kind_text, name = ("deployment" if kind is None else kind), value
    resolved = kinds.get(kind_text.lower())
    if resolved is None:
        raise UsageError(
            f'invalid workload kind "{kind_text}": use deploy/NAME, sts/NAME or ds/NAME'
        )
    return resolved, resource_name(name, what="workload name")
