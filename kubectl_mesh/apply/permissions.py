"""Ask before writing: may the user make every write of the plan?

One `kubectl create -f - -o json` of a List of SelfSubjectAccessReviews (one per
verb and object the plan writes) answers for the whole plan in one call, before
the first write, so a user who lacks a permission learns every missing one at
once and nothing is half-written. The reviews are evaluated by the API server's
own authorizer, the one the writes would meet. Under --dry-run the reviews still
run (they change nothing), so a dry run shows the same list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from kubectl_mesh import errors
from kubectl_mesh.access import Denied

# A write that may create the object or patch it (whichever the plan finds) needs one of them.
EITHER = ("create", "patch")


def _attributes(target, verb: str) -> dict:
    kind = getattr(target, "kind", "")
    resource = _resource(kind)
    plural, _, group = resource.partition(".")
    namespace = getattr(target, "namespace", "") or ""
    attrs = {"verb": verb, "group": group, "resource": plural, "name": getattr(target, "name", "")}
    # A Namespace object is authorized in its own namespace (a RoleBinding there may allow it).
    attrs["namespace"] = attrs["name"] if kind == "Namespace" else namespace
    return attrs


def _resource(kind: str) -> str:
    from kubectl_mesh.snapshot import CORE_RESOURCES, ISTIO_RESOURCES

    return {**CORE_RESOURCES, **ISTIO_RESOURCES}.get(kind, kind.lower() + "s")


def required(writes: Sequence) -> list[tuple[dict, ...]]:
    """The permissions the writes need: each entry is a tuple of alternatives (any one suffices)."""
    needs: list[tuple[dict, ...]] = []
    for write in writes:
        verbs = [v for v in write.verbs if v != "get"]
        either = tuple(v for v in EITHER if v in verbs)
        alone = [v for v in verbs if v not in either] if len(either) == 2 else verbs
        for target in write.targets:
            entries = [(_attributes(target, v),) for v in alone]
            if len(either) == 2:
                entries.append(tuple(_attributes(target, v) for v in either))
            for entry in entries:
                if entry not in needs:
                    needs.append(entry)
    return needs


def _decode_all(text: str) -> list[dict]:
    decoder, out, i = json.JSONDecoder(), [], 0
    text = text.strip()
    while i < len(text):
        obj, end = decoder.raw_decode(text, i)
        out.extend(obj.get("items", []) if obj.get("kind") == "List" else [obj])
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def missing(runner, writes: Sequence) -> list[Denied] | None:
    """The permissions the plan lacks ([] when every write is allowed); None when the API
    server could not be asked (the writes then meet the authorizer themselves)."""
    needs = required(writes)
    if not needs:
        return []
    flat = [attrs for entry in needs for attrs in entry]
    reviews = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
         "spec": {"resourceAttributes": attrs}} for attrs in flat]}
    try:
        out = runner.kubectl("create", "-f", "-", "-o", "json", "--validate=false", stdin=json.dumps(reviews))
        answers = _decode_all(out)
    except (errors.MeshError, ValueError):
        return None
    if len(answers) != len(flat):
        return None
    allowed = [bool((a.get("status") or {}).get("allowed")) for a in answers]
    lacking: list[Denied] = []
    position = 0
    for entry in needs:
        granted = any(allowed[position:position + len(entry)])
        if not granted:
            first = entry[0]
            verb = " or ".join(a["verb"] for a in entry)
            resource = f"{first['resource']}.{first['group']}" if first["group"] else first["resource"]
            lacking.append(Denied(verb, resource, first["namespace"] or None, first["name"] or None))
        position += len(entry)
    return lacking
