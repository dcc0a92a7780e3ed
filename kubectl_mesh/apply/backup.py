"""Local copies of objects before they are changed, and how to restore them.

Saved under the user's state directory, per context and namespace,
timestamped: $KUBECTL_MESH_STATE_DIR, else $XDG_STATE_HOME/kubectl-mesh,
else ~/.local/state/kubectl-mesh.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

# Fields the API server owns; a restore must not carry them (a stale
# resourceVersion would make the restore conflict).
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


def state_dir() -> Path:
    explicit = os.environ.get("KUBECTL_MESH_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kubectl-mesh"


def restorable(obj: dict) -> dict:
    """The object as it can be given back to `kubectl replace -f`."""
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata") or {}
    for key in _SERVER_FIELDS:
        metadata.pop(key, None)
    clean.pop("status", None)
    return clean


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", part) or "_"


def save(obj: dict, context: str | None, *, now: datetime | None = None) -> Path:
    """Write `obj` as YAML; return the file's path."""
    import yaml

    metadata = obj.get("metadata") or {}
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = state_dir() / "backups" / _safe(context or "current-context") / _safe(
        metadata.get("namespace") or "_cluster"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-{_safe(obj.get('kind', 'object').lower())}-{_safe(metadata.get('name', ''))}.yaml"
    path.write_text(yaml.safe_dump(restorable(obj), sort_keys=False))
    return path


def restore_command(path: Path, context: str | None = None, kubeconfig: str | None = None) -> str:
    argv = ["kubectl"]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--context", context]
    return shlex.join([*argv, "replace", "-f", str(path)])
