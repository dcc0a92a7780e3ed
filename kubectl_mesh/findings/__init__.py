"""The checks of `kubectl mesh diagnose`, as data.

Each check is a small function over a snapshot's MeshIndex with a stable ID
(MESH-INJ-001, ...), a category, the related `istioctl analyze` code where
there is one, and the guide's troubleshooting row it automates. `run` gives
the findings of every check, sorted by category, severity and object.
"""

from __future__ import annotations

from kubectl_mesh.findings import (  # noqa: F401  (registers the checks)
    annotation_checks,
    conflicts,
    injection,
    mtls,
    resources,
    rules,
    traffic,
)
from kubectl_mesh.findings.index import MeshIndex
from kubectl_mesh.findings.model import (
    CATEGORIES,
    CHECKS,
    ERROR,
    INFO,
    LEVELS,
    RANK,
    WARNING,
    CheckSpec,
    Finding,
    Ref,
)

__all__ = [
    "CATEGORIES", "CHECKS", "ERROR", "INFO", "LEVELS", "RANK", "WARNING",
    "CheckSpec", "Finding", "MeshIndex", "Ref", "run", "counts", "reaches",
]


def run(snapshot, *, namespaces: set[str] | None = None, index: MeshIndex | None = None,
        mesh_settings=None) -> list[Finding]:
    """Every check's findings; with `namespaces`, only those about objects there
    (a Namespace object counts as being in itself). `mesh_settings`: Istio's mesh
    and injector settings as read (meshconfig); by default the snapshot's ConfigMaps."""
    index = index or MeshIndex(snapshot, mesh_settings)
    found: list[Finding] = []
    for spec in CHECKS:
        for finding in spec.run(index):
            if namespaces is None or finding.namespace in namespaces:
                found.append(finding)
    found.sort(key=lambda f: (CATEGORIES.index(f.category), -RANK[f.level], f.id, f.object.namespace or "",
                              f.object.kind, f.object.name))
    return found


def counts(findings: list[Finding]) -> dict[str, int]:
    result = {level: 0 for level in LEVELS}
    for finding in findings:
        result[finding.level] += 1
    return result


def reaches(findings: list[Finding], threshold: str) -> bool:
    """Does any finding reach the --fail-on level?"""
    return any(RANK[f.level] >= RANK[threshold] for f in findings)
