"""Kubernetes resource quantities in canonical form.

The API server stores quantities canonically (``1000m`` becomes ``1``, ``2048Mi`` becomes
``2Gi``), which is what Istio's injector output in the reference files shows; this mirrors
apimachinery's ``Quantity.CanonicalizeBytes``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}

_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[eE][+-]?[0-9]+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")


def parse(text: str) -> tuple[Fraction, str]:
    """Value and format ("DecimalSI", "BinarySI" or "DecimalExponent")."""
    m = _RE.match(text.strip())
    if not m:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return number * (2 ** _BINARY[suffix]), "BinarySI"
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:]), "DecimalExponent"
    return number * Fraction(10) ** _DECIMAL[suffix], "DecimalSI"


def _decimal(value: Fraction, fmt: str) -> str:
    # Values finer than nano round up, as Kubernetes does.
    nanos = value * 10**9
    if nanos.denominator != 1:
        nanos = Fraction(math.ceil(nanos))
    mantissa, exp = int(nanos), -9
    if mantissa == 0:
        return "0"
    while mantissa % 1000 == 0 and exp < (18 if fmt == "DecimalSI" else 10**6):
        mantissa //= 1000
        exp += 3
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exp}" if exp else str(mantissa)
    return f"{mantissa}{_DECIMAL_BY_EXP[exp]}"


def canonical(text: str) -> str:
    try:
        value, fmt = parse(str(text))
    except ValueError:
        return text
    if value == 0:
        return "0"
    if fmt == "BinarySI":
        if -1024 < value < 1024 or value.denominator != 1:
            return _decimal(value, "DecimalSI")
        n, exp = int(value), 0
        while n % 1024 == 0 and exp < 60:
            n //= 1024
            exp += 10
        return f"{n}{_BINARY_BY_EXP.get(exp, '')}"
    return _decimal(value, fmt)


def canonicalize_resources(resources: dict | None) -> dict | None:
    if not isinstance(resources, dict):
        return resources
    out = dict(resources)
    for section in ("limits", "requests"):
        if isinstance(out.get(section), dict):
            out[section] = {k: canonical(str(v)) for k, v in out[section].items()}
    return out
