"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes strategic merge patch.

Strategic merge patch needs to know which lists merge by key; Kubernetes takes that from
the Go struct tags of built-in types. :func:`merge_key` reproduces the tags for the fields
kubectl and the plugin actually touch (containers, env, ports, volumes, ...). Lists without
a known strategy are replaced, as Kubernetes does for atomic lists.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request

_MISSING = object()


# --------------------------------------------------------------------------- merge patch

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# --------------------------------------------------------------------------- JSON patch

def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f'the server rejected our request due to an error in our request: invalid JSON pointer "{path}"')
    return [_unescape(t) for t in path[1:].split("/")]


def _resolve_parent(doc: Any, tokens: list[str], op: str, path: str) -> tuple[Any, str]:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise _json_patch_error(f'{op} operation does not apply: doc is missing path: "{path}"')
    return cur, tokens[-1]


def _json_patch_error(msg: str) -> ApiError:
    # A real server answers 422 for a JSON patch that cannot be applied.
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {msg}")


def _get(doc: Any, path: str, op: str) -> Any:
    cur = doc
    for t in _pointer(path):
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise _json_patch_error(f'{op} operation does not apply: doc is missing path: "{path}"')
    return cur


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _resolve_parent(doc, tokens, op, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _json_patch_error(f'{op} operation does not apply: doc is missing path: "{path}"')
    else:
        raise _json_patch_error(f'{op} operation does not apply: doc is missing path: "{path}"')
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path)
    parent, last = _resolve_parent(doc, tokens, op, path)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _json_patch_error(f'{op} operation does not apply: doc is missing path: "{path}"')
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("the server rejected our request due to an error in our request")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise bad_request("the server rejected our request due to an error in our request")
        kind, path = op["op"], op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path, "replace")
            doc = _remove(doc, path, "replace") if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op.get("value")), "replace")
        elif kind == "move":
            value = _get(doc, op["from"], "move")
            doc = _remove(doc, op["from"], "move")
            doc = _add(doc, path, value, "move")
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"], "copy")), "copy")
        elif kind == "test":
            if _get(doc, path, "test") != op.get("value"):
                raise _json_patch_error(f'testing value {path} failed: test failed')
        else:
            raise bad_request(f"the server rejected our request due to an error in our request: unexpected kind: {kind}")
    return doc


# --------------------------------------------------------------------------- strategic merge

_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}

# (parent field, list field) -> merge key, for fields inside containers / pod specs.
_CONTAINER_CHILD_KEYS = {
    "ports": "containerPort",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "resizePolicy": "resourceName",
}

_POD_SPEC_KEYS = {
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}

# Primitive lists whose strategy is "merge" (union) rather than replace.
_PRIMITIVE_MERGE = {("metadata", "finalizers")}


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """Merge key of the list at ``path`` (field names, list indices dropped), or None."""
    if not path:
        return None
    last = path[-1]
    parent = path[-2] if len(path) > 1 else ""
    if last in _CONTAINER_LISTS:
        return "name"
    if parent in _CONTAINER_LISTS and last in _CONTAINER_CHILD_KEYS:
        return _CONTAINER_CHILD_KEYS[last]
    if last in _POD_SPEC_KEYS and parent == "spec" and kind in {
        "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "PodTemplate",
    }:
        return _POD_SPEC_KEYS[last]
    if last == "ownerReferences" and parent == "metadata":
        return "uid"
    if last == "conditions" and parent == "status":
        return "type"
    if kind == "Service" and path == ("spec", "ports"):
        return "port"
    if kind == "Node" and path == ("status", "addresses"):
        return "type"
    return None


def _is_primitive_merge(path: tuple[str, ...]) -> bool:
    return tuple(path[-2:]) in _PRIMITIVE_MERGE


def strategic_merge_patch(original: Any, patch: Any, kind: str) -> Any:
    if not isinstance(patch, dict):
        raise bad_request("the server rejected our request due to an error in our request: patch must be an object")
    result = _smp_map(copy.deepcopy(original) if isinstance(original, dict) else {}, patch, kind, ())
    return {} if result is _MISSING else result


def _smp_map(orig: dict, patch: dict, kind: str, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _MISSING
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}

    retain = patch.get("$retainKeys")
    orders: dict[str, list] = {}
    deletions: dict[str, list] = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v or []
        elif k.startswith("$deleteFromPrimitiveList/"):
            deletions[k.split("/", 1)[1]] = v or []

    result = orig
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        child_path = path + (k,)
        if v is None:
            result.pop(k, None)
            continue
        cur = result.get(k, _MISSING)
        if isinstance(v, dict):
            merged = _smp_map(cur if isinstance(cur, dict) else {}, v, kind, child_path)
            if merged is _MISSING:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _smp_list(cur if isinstance(cur, list) else [], v, kind, child_path)
        else:
            result[k] = copy.deepcopy(v)

    for fld, values in deletions.items():
        if isinstance(result.get(fld), list):
            result[fld] = [x for x in result[fld] if x not in values]
    for fld, order in orders.items():
        if isinstance(result.get(fld), list):
            result[fld] = _apply_order(result[fld], order, merge_key(kind, path + (fld,)))
    if isinstance(retain, list):
        for k in list(result):
            if k not in retain:
                del result[k]
    return result


def _smp_list(orig: list, patch: list, kind: str, path: tuple[str, ...]) -> list:
    # A `{"$patch": "replace"}` element means: the list is the other elements, verbatim.
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    key = merge_key(kind, path)
    if key is None:
        if _is_primitive_merge(path):
            out = list(orig)
            for x in patch:
                if x not in out:
                    out.append(copy.deepcopy(x))
            return out
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = [copy.deepcopy(x) for x in orig]
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(
                f"the server rejected our request due to an error in our request: "
                f"list {'.'.join(path)} must contain objects with merge key {key!r}"
            )
        if key not in item:
            raise bad_request(
                f"map: {item} does not contain declared merge key: {key}"
            )
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            merged = _smp_map({}, item, kind, path)
            if merged is not _MISSING:
                out.append(merged)
        else:
            merged = _smp_map(out[idx], item, kind, path)
            if merged is _MISSING:
                del out[idx]
            else:
                out[idx] = merged
    return out


def _apply_order(items: list, order: list, key: str | None) -> list:
    """Reorder per ``$setElementOrder``: listed elements first in that order, others after."""
    def ident(x):
        if key and isinstance(x, dict):
            return x.get(key)
        return x

    wanted = [ident(o) for o in order]
    pos = {}
    for i, w in enumerate(wanted):
        pos.setdefault(_hashable(w), i)
    indexed = list(enumerate(items))
    indexed.sort(key=lambda p: (pos.get(_hashable(ident(p[1])), len(wanted)), p[0]))
    return [x for _, x in indexed]


def _hashable(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)
