"""The types the checks rely on, checked on manifests before any check reads them.

A manifest may say anything: `kind: 3`, labels as a list, subsets as numbers,
`hosts: "a.example"`. The API server would refuse such an object; `diagnose
-f` refuses it too, with one line naming the file, the document, the object
and the field (exit 2), instead of a traceback from deep inside a check.
Only the fields some check reads are described; everything else passes
through. A field may be absent, and a section (a mapping or a list) null; a
scalar field that is there must have its type.
"""

from __future__ import annotations

from typing import Any

# A shape is a type (str, int, bool, dict, list), a tuple of them, a dict of field ->
# shape (an object), [shape] (a list of those), or {STR: shape} (a map with any keys).
STR = str
ANY = object
SCALAR = (str, int, float, bool)
LABELS = {STR: str}
SELECTOR = {"matchLabels": LABELS,
            "matchExpressions": [{"key": str, "operator": str, "values": [str]}]}
METADATA = {"name": str, "namespace": str, "generateName": str, "labels": LABELS, "annotations": {STR: str},
            "ownerReferences": [{"apiVersion": str, "kind": str, "name": str, "controller": bool}],
            "resourceVersion": str, "uid": str}
CONTAINER = {
    "name": str, "image": str, "restartPolicy": str,
    "command": [str], "args": [str],
    "env": [{"name": str, "value": str, "valueFrom": dict}],
    "ports": [{"containerPort": int, "name": str, "protocol": str}],
    "resources": {"requests": {STR: SCALAR}, "limits": {STR: SCALAR}},
    "readinessProbe": dict, "livenessProbe": dict, "startupProbe": dict,
}
POD_SPEC = {"containers": [CONTAINER], "initContainers": [CONTAINER], "nodeName": str,
            "serviceAccountName": str, "hostNetwork": bool, "volumes": [dict]}
STATUSES = [{"name": str, "ready": bool, "state": dict, "lastState": dict, "restartCount": int}]
POD_STATUS = {"phase": str, "podIP": str, "conditions": [{"type": str, "status": str}],
              "containerStatuses": STATUSES, "initContainerStatuses": STATUSES}
TEMPLATE = {"metadata": METADATA, "spec": POD_SPEC}
WORKLOAD_SPEC = {"replicas": int, "selector": SELECTOR, "template": TEMPLATE}
DESTINATION = {"host": str, "subset": str, "port": {"number": int}}
ROUTES = [{"destination": DESTINATION, "weight": int, "headers": dict}]
HTTP_ROUTE = {"name": str, "match": [dict], "route": ROUTES, "mirror": DESTINATION, "retries": dict,
              "timeout": str, "fault": dict, "redirect": dict, "rewrite": dict, "delegate": dict}
L4_ROUTE = {"match": [dict], "route": ROUTES}
SUBSET = {"name": str, "labels": LABELS, "trafficPolicy": dict}

SPECS: dict[str, dict] = {
    "Pod": {"spec": POD_SPEC, "status": POD_STATUS},
    "Deployment": {"spec": WORKLOAD_SPEC, "status": dict},
    "StatefulSet": {"spec": WORKLOAD_SPEC, "status": dict},
    "DaemonSet": {"spec": WORKLOAD_SPEC, "status": dict},
    "ReplicaSet": {"spec": WORKLOAD_SPEC, "status": dict},
    "Service": {"spec": {"selector": LABELS, "type": str, "clusterIP": str,
                         "ports": [{"port": int, "name": str, "protocol": str, "appProtocol": str,
                                    "targetPort": (int, str)}]}},
    "ConfigMap": {"data": {STR: str}},
    "DestinationRule": {"spec": {"host": str, "subsets": [SUBSET], "trafficPolicy": dict, "exportTo": [str],
                                 "workloadSelector": {"matchLabels": LABELS}}},
    "VirtualService": {"spec": {"hosts": [str], "gateways": [str], "exportTo": [str], "http": [HTTP_ROUTE],
                                "tcp": [L4_ROUTE], "tls": [L4_ROUTE]}},
    "PeerAuthentication": {"spec": {"selector": {"matchLabels": LABELS}, "mtls": {"mode": str},
                                    "portLevelMtls": {STR: {"mode": str}}}},
    "ServiceEntry": {"spec": {"hosts": [str], "addresses": [str], "exportTo": [str], "location": str,
                              "resolution": str, "ports": [{"number": int, "name": str, "protocol": str}],
                              "workloadSelector": {"labels": LABELS}}},
    "Gateway": {"spec": {"selector": LABELS, "servers": [{"hosts": [str], "port": dict}]}},
    "Sidecar": {"spec": {"workloadSelector": {"labels": LABELS}, "egress": [{"hosts": [str]}],
                         "ingress": [dict]}},
    "AuthorizationPolicy": {"spec": {"selector": {"matchLabels": LABELS}, "action": str, "rules": [dict]}},
}
OBJECT = {"apiVersion": str, "kind": str, "metadata": METADATA}
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a mapping",
          list: "a list"}


def _describe(shape: Any) -> str:
    if isinstance(shape, tuple):
        return " or ".join(_describe(s) for s in shape)
    if isinstance(shape, dict):
        return "a mapping"
    if isinstance(shape, list):
        return "a list"
    return _NAMES.get(shape, str(shape))


def actual(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    for kind, name in ((dict, "a mapping"), (list, "a list"), (str, "a string"), (int, "an integer"),
                       (float, "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


_TYPES = {str: {str}, int: {int}, float: {int, float}, bool: {bool}, dict: {dict}, list: {list}}


def _compile(shape: Any):
    """A checker for `shape`: checker(value) -> None, or (path parts innermost first,
    message). Compiled once; on a good value it builds nothing (a 10,000-pod snapshot
    has ~750,000 fields to look at)."""
    if isinstance(shape, dict) and STR in shape:
        inner = _compile(shape[STR])

        def check_map(value):
            if value is None:
                return None
            if type(value) is not dict:
                return [], f"must be a mapping, not {actual(value)}"
            for key, item in value.items():
                if type(key) is not str:
                    return [], f"has a key {key!r} that is not a string"
                found = inner(item)
                if found is not None:
                    found[0].append(key)
                    return found
            return None

        return check_map
    if isinstance(shape, dict):
        fields = [(key, _compile(inner)) for key, inner in shape.items()]

        def check_object(value):
            if value is None:
                return None
            if type(value) is not dict:
                return [], f"must be a mapping, not {actual(value)}"
            for key, checker in fields:
                if key in value:
                    found = checker(value[key])
                    if found is not None:
                        found[0].append(key)
                        return found
            return None

        return check_object
    if isinstance(shape, list):
        inner, described = _compile(shape[0]), _describe(shape[0])

        def check_list(value):
            if value is None:
                return None
            if type(value) is not list:
                return [], f"must be a list, not {actual(value)}"
            for index, item in enumerate(value):
                found = inner(item) if item is not None else ([], f"must be {described}, not null")
                if found is not None:
                    found[0].append(index)
                    return found
            return None

        return check_list
    if shape is ANY:
        return lambda value: None
    kinds = shape if isinstance(shape, tuple) else (shape,)
    allowed = frozenset().union(*(_TYPES.get(k, {k}) for k in kinds))
    described = _describe(shape)
    section = all(k in (dict, list) for k in kinds)

    def check_scalar(value):
        if type(value) in allowed or (value is None and section):
            return None
        return [], f"must be {described}, not {'null' if value is None else actual(value)}"

    return check_scalar


def _path(parts: list) -> str:
    text = ""
    for part in reversed(parts):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problem(value: Any, shape: Any, path: str = "") -> str | None:
    """Where `value` does not have `shape`: "spec.subsets[1].labels must be a mapping,
    not a list"; None when it does."""
    found = _compile(shape)(value)
    if found is None:
        return None
    where = _path(found[0])
    where = f"{path}.{where}" if path and where else (path or where or "the object")
    return f"{where} {found[1]}"


_OBJECT = _compile(OBJECT)
_SPECS = {kind: _compile(spec) for kind, spec in SPECS.items()}


def object_problem(obj: dict) -> str | None:
    """The first field of a manifest object that does not have the type checks rely on."""
    found = _OBJECT(obj)
    if found is None:
        spec = _SPECS.get(obj.get("kind"))
        found = spec(obj) if spec else None
    if found is None:
        return None
    return f"{_path(found[0]) or 'the object'} {found[1]}"
