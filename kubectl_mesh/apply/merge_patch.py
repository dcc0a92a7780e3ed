"""RFC 7396 JSON merge patches: what `kubectl patch --type merge` sends and the
API server applies. The writer computes the patch between the object read and
the object wanted, and replays one on the object read for a dry run's diff."""

from __future__ import annotations

import copy
import json
from typing import Any


def merge_diff(before: dict, after: dict) -> dict:
    """The RFC 7396 JSON merge patch that turns `before` into `after` (both objects):
    changed and new keys with their new values, removed keys as null, lists whole."""
    patch: dict = {}
    for key, value in after.items():
        old = before.get(key, _MISSING)
        if old is not _MISSING and _same(old, value):
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            nested = merge_diff(old, value)
            if nested:
                patch[key] = nested
        else:
            patch[key] = copy.deepcopy(value)
    for key in before:
        if key not in after:
            patch[key] = None
    return patch


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (so that 1 and True differ, as they do on the wire)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch (what the API server does with --type merge)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
