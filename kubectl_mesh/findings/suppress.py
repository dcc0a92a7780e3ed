"""Suppressing findings as istioctl analyze does: `--suppress CODE=RESOURCE` and the
`galley.istio.io/analyze-suppress` annotation on the object a finding is about.

CODE is an Istio code (IST0102) or one of ours (MESH-INJ-001); RESOURCE is
"Kind name.namespace" (istioctl's form), "Kind namespace/name" or "Kind name"
for a cluster-scoped object. Both may use `*` for any run of characters, as
istioctl's glob does (`IST0102=Namespace *`, `*=Deployment web.*`). The
annotation holds comma-separated codes (either kind), or `*` for all.

A suppressed finding is not dropped: diagnose counts it and lists it in -o json
with what suppressed it, and it does not count towards --fail-on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubectl_mesh.errors import UsageError
from kubectl_mesh.mesh import annotations_of

ANNOTATION = "galley.istio.io/analyze-suppress"
_CODE = re.compile(r"^(IST\d{4}|MESH-[A-Z]+-\d{3})$")


def glob(pattern: str, text: str) -> bool:
    """istioctl's glob: `*` matches any run of characters, everything else itself."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == text
    if not text.startswith(parts[0]) or not text.endswith(parts[-1]) or len(text) < len(parts[0]) + len(parts[-1]):
        return False
    position = len(parts[0])
    end = len(text) - len(parts[-1])
    for part in parts[1:-1]:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True)
class Rule:
    code: str
    resource: str

    def __str__(self) -> str:
        return f"{self.code}={self.resource}"


def parse(values) -> list[Rule]:
    """`--suppress` values; a malformed one is a usage error (exit 2)."""
    rules = []
    for value in values or ():
        parts = value.split("=")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise UsageError(f'--suppress {value!r}: expected CODE=KIND NAME[.NAMESPACE], '
                             'e.g. --suppress "IST0102=Namespace default" (wildcards: "IST0102=Namespace *")')
        rules.append(Rule(parts[0].strip(), " ".join(parts[1].split())))
    return rules


def unknown_codes(rules: list[Rule], known: set[str]) -> list[str]:
    """Codes of rules that can match no finding diagnose makes (istioctl warns, and goes on)."""
    return [r.code for r in rules if "*" not in r.code and r.code not in known]


def names_of(ref) -> list[str]:
    """The ways a rule may name the object: istioctl's and kubectl's."""
    if ref.namespace is None:
        return [f"{ref.kind} {ref.name}"]
    return [f"{ref.kind} {ref.name}.{ref.namespace}", f"{ref.kind} {ref.namespace}/{ref.name}"]


def _codes(finding) -> list[str]:
    return [c for c in (finding.istio_code, finding.id) if c]


def why_suppressed(finding, rules: list[Rule], snapshot) -> str | None:
    """What suppresses the finding (for the JSON), or None."""
    obj = finding.object
    target = snapshot.get(obj.kind, obj.namespace, obj.name) if snapshot is not None else None
    value = annotations_of(target).get(ANNOTATION) if target else None
    if isinstance(value, str) and value.strip():
        listed = [c.strip() for c in value.split(",") if c.strip()]
        if "*" in listed or any(c in listed for c in _codes(finding)):
            return f"annotation {ANNOTATION}={value} on {obj}"
    for rule in rules:
        if any(glob(rule.code, c) for c in _codes(finding)) and any(glob(rule.resource, n) for n in names_of(obj)):
            return f"--suppress {rule}"
    return None


def split(findings, rules: list[Rule], snapshot) -> tuple[list, list[tuple[object, str]]]:
    """(kept, [(suppressed, why)])."""
    kept, suppressed = [], []
    for finding in findings:
        why = why_suppressed(finding, rules, snapshot)
        if why is None:
            kept.append(finding)
        else:
            suppressed.append((finding, why))
    return kept, suppressed


def valid_code(code: str) -> bool:
    return bool(_CODE.match(code))
