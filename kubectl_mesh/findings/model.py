"""Findings and the registry of checks that produce them.

A check is one small function over a MeshIndex that yields `Found` items;
the registry gives each its stable ID, category, Istio code and the guide's
troubleshooting row it automates, so the checks are data that `diagnose`,
`status` and the documentation can list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubectl_mesh.report import FAIL, SKIP, WARN, Check

ERROR, WARNING, INFO = "error", "warning", "info"
LEVELS = (ERROR, WARNING, INFO)
RANK = {INFO: 0, WARNING: 1, ERROR: 2}
# How a finding renders among checks: info is neither a pass nor a problem.
RESULT = {ERROR: FAIL, WARNING: WARN, INFO: SKIP}
CATEGORIES = ("injection", "mtls", "traffic", "resources", "annotations")


@dataclass(frozen=True)
class Ref:
    kind: str
    namespace: str | None  # None for cluster-scoped kinds (Namespace)
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


# Found.istio when the finding carries its check's Istio code (the usual case).
SPEC_CODE = "spec"


@dataclass
class Found:
    """What a check function yields; the registry adds the rest."""

    level: str
    object: Ref
    message: str
    fix: str
    details: dict = field(default_factory=dict)
    # The check's Istio code, or None where istioctl does not report this case
    # (e.g. a pod missing its proxy in a revision-labelled namespace).
    istio: str | None = SPEC_CODE


@dataclass
class Finding:
    id: str
    category: str
    level: str
    object: Ref
    message: str
    fix: str
    istio_code: str | None = None
    details: dict = field(default_factory=dict)
    origin: str | None = None  # file:line for manifests

    @property
    def namespace(self) -> str | None:
        return self.object.namespace if self.object.kind != "Namespace" else self.object.name

    def headline(self) -> str:
        code = f" [{self.istio_code}]" if self.istio_code else ""
        return f"{self.id}{code} {self.object}: {self.message}"

    def as_dict(self) -> dict:
        data = {
            "level": self.level,
            "object": self.object.as_dict(),
            "istioCode": self.istio_code,
            "fix": self.fix,
        }
        if self.origin:
            data["file"] = self.origin
        if self.details:
            data["details"] = self.details
        return data

    def as_check(self) -> Check:
        """As a check of the report: the text line carries ID, code and object; the
        JSON keeps `message` to the message itself and adds the finding's fields."""
        data = self.as_dict()
        data["message"] = self.message
        hint = self.fix if not self.origin else f"{self.fix}\n(declared at {self.origin})"
        return Check(self.id, self.category, str(self.object), RESULT[self.level], self.headline(),
                     hint, data=data)


@dataclass(frozen=True)
class CheckSpec:
    id: str
    category: str
    title: str
    istio_code: str | None
    guide_row: str | None
    function: Callable

    def run(self, index) -> list[Finding]:
        return [
            Finding(self.id, self.category, found.level, found.object, found.message, found.fix,
                    self.istio_code if found.istio == SPEC_CODE else found.istio, found.details)
            for found in self.function(index)
        ]

    def as_dict(self) -> dict:
        return {"id": self.id, "category": self.category, "title": self.title,
                "istioCode": self.istio_code, "guideRow": self.guide_row}


CHECKS: list[CheckSpec] = []


def check(id: str, category: str, title: str, *, istio: str | None = None, guide: str | None = None):
    """Register a check function `f(index) -> Iterable[Found]` under a stable ID."""
    assert category in CATEGORIES, category

    def decorator(function: Callable[..., Iterable[Found]]):
        if any(spec.id == id for spec in CHECKS):
            raise ValueError(f"duplicate check id {id}")
        CHECKS.append(CheckSpec(id, category, title, istio, guide, function))
        return function

    return decorator


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def listing(names: Iterable[str], limit: int = 5) -> str:
    """a, b, c and 4 more"""
    items = list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
