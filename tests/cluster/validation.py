"""Server-side validation, as the API server does it.

Custom resources are validated against their CRD's ``openAPIV3Schema`` for the version sent,
with :mod:`jsonschema` (Kubernetes' structural-schema extensions translated first). Unknown
fields are found by walking the object alongside the schema, then rejected, warned about or
pruned according to ``fieldValidation``. Names and labels are checked with the same rules
and messages as Kubernetes.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema

from .errors import cause

# ----------------------------------------------------------------------------- names / labels

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

# Kinds whose names are DNS-1123 labels / DNS-1035 labels rather than subdomains.
_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}


def validate_name(kind: str, name: str) -> list[dict[str, str]]:
    if kind in _LABEL_NAMED:
        ok, msg, limit = DNS1123_LABEL.match(name), _LABEL_MSG, 63
    elif kind in _DNS1035_NAMED:
        ok, msg, limit = DNS1035_LABEL.match(name), _DNS1035_MSG, 63
    else:
        ok, msg, limit = DNS1123_SUBDOMAIN.match(name), _SUBDOMAIN_MSG, 253
    causes = []
    if len(name) > limit:
        causes.append(cause("FieldValueInvalid", "metadata.name",
                            f'Invalid value: "{name}": must be no more than {limit} characters'))
    if not ok:
        causes.append(cause("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {msg}'))
    return causes


def _validate_qualified_key(key: str, field: str) -> list[dict[str, str]]:
    prefix, _, name = key.rpartition("/")
    out = []
    if prefix and not DNS1123_SUBDOMAIN.match(prefix):
        out.append(cause("FieldValueInvalid", field, f'Invalid value: "{key}": prefix part {_SUBDOMAIN_MSG}'))
    if len(name) > 63:
        out.append(cause("FieldValueInvalid", field,
                         f'Invalid value: "{key}": name part must be no more than 63 characters'))
    if not QUALIFIED_NAME.match(name):
        out.append(cause("FieldValueInvalid", field, f'Invalid value: "{key}": {_QUALIFIED_MSG}'))
    return out


def validate_metadata(kind: str, meta: dict[str, Any]) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    for key, value in (meta.get("labels") or {}).items():
        causes += _validate_qualified_key(key, "metadata.labels")
        if not isinstance(value, str):
            causes.append(cause("FieldValueInvalid", "metadata.labels",
                                f"Invalid value: {json.dumps(value)}: must be a string"))
        elif len(value) > 63:
            causes.append(cause("FieldValueInvalid", "metadata.labels",
                                f'Invalid value: "{value}": must be no more than 63 characters'))
        elif not LABEL_VALUE.match(value):
            causes.append(cause("FieldValueInvalid", "metadata.labels",
                                f'Invalid value: "{value}": {_LABEL_VALUE_MSG}'))
    annotations = meta.get("annotations") or {}
    total = sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str))
    if total > 262144:  # what `kubectl apply` of a huge CRD runs into (last-applied-configuration)
        causes.append(cause("FieldValueTooLong", "metadata.annotations", "Too long: must have at most 262144 bytes"))
    for key, value in annotations.items():
        causes += _validate_qualified_key(key, "metadata.annotations")
        if not isinstance(value, str):
            causes.append(cause("FieldValueInvalid", "metadata.annotations",
                                f"Invalid value: {json.dumps(value)}: must be a string"))
    return causes


# ObjectMeta's fields: anything else under metadata is an unknown field.
OBJECT_META_FIELDS = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
}

# The fields of built-in types (Kubernetes 1.32), for strict decoding: type -> field -> the
# field's type ("" = scalar or not checked deeper, "[]T" = list of T, "map" = free-form).
_ANY = ""
BUILTIN_SHAPES: dict[str, dict[str, str]] = {
    "ObjectMeta": {f: _ANY for f in OBJECT_META_FIELDS},
    "Namespace": {"spec": _ANY, "status": _ANY},
    "Pod": {"spec": "PodSpec", "status": _ANY},
    "Service": {"spec": "ServiceSpec", "status": _ANY},
    "Endpoints": {"subsets": _ANY},
    "ConfigMap": {"data": _ANY, "binaryData": _ANY, "immutable": _ANY},
    "Secret": {"data": _ANY, "stringData": _ANY, "type": _ANY, "immutable": _ANY},
    "ServiceAccount": {"secrets": _ANY, "imagePullSecrets": _ANY, "automountServiceAccountToken": _ANY},
    "Node": {"spec": _ANY, "status": _ANY},
    "Event": {f: _ANY for f in (
        "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
        "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance")},
    "Deployment": {"spec": "DeploymentSpec", "status": _ANY},
    "ReplicaSet": {"spec": "ReplicaSetSpec", "status": _ANY},
    "StatefulSet": {"spec": "StatefulSetSpec", "status": _ANY},
    "DaemonSet": {"spec": "DaemonSetSpec", "status": _ANY},
    "CustomResourceDefinition": {"spec": _ANY, "status": _ANY},
    "SelfSubjectAccessReview": {"spec": _ANY, "status": _ANY},
    "SelfSubjectRulesReview": {"spec": _ANY, "status": _ANY},
    "SelfSubjectReview": {"status": _ANY},
    "Role": {"rules": "[]PolicyRule"},
    "ClusterRole": {"rules": "[]PolicyRule", "aggregationRule": _ANY},
    "RoleBinding": {"subjects": "[]Subject", "roleRef": "RoleRef"},
    "ClusterRoleBinding": {"subjects": "[]Subject", "roleRef": "RoleRef"},
    "PolicyRule": {f: _ANY for f in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")},
    "Subject": {f: _ANY for f in ("kind", "apiGroup", "name", "namespace")},
    "RoleRef": {f: _ANY for f in ("apiGroup", "kind", "name")},
    "DeploymentSpec": {f: _ANY for f in ("replicas", "selector", "strategy", "minReadySeconds",
                                         "revisionHistoryLimit", "paused", "progressDeadlineSeconds")}
    | {"template": "PodTemplateSpec"},
    "ReplicaSetSpec": {f: _ANY for f in ("replicas", "minReadySeconds", "selector")} | {"template": "PodTemplateSpec"},
    "StatefulSetSpec": {f: _ANY for f in (
        "replicas", "selector", "volumeClaimTemplates", "serviceName", "podManagementPolicy", "updateStrategy",
        "revisionHistoryLimit", "minReadySeconds", "persistentVolumeClaimRetentionPolicy", "ordinals")}
    | {"template": "PodTemplateSpec"},
    "DaemonSetSpec": {f: _ANY for f in ("selector", "updateStrategy", "minReadySeconds", "revisionHistoryLimit")}
    | {"template": "PodTemplateSpec"},
    "PodTemplateSpec": {"metadata": "ObjectMeta", "spec": "PodSpec"},
    "PodSpec": {f: _ANY for f in (
        "volumes", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
        "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
        "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
        "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
        "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates", "runtimeClassName",
        "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os",
        "hostUsers", "schedulingGates", "resourceClaims", "resources")}
    | {"containers": "[]Container", "initContainers": "[]Container"},
    "Container": {f: _ANY for f in (
        "name", "image", "command", "args", "workingDir", "envFrom", "resources", "resizePolicy", "restartPolicy",
        "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
        "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin",
        "stdinOnce", "tty")}
    | {"ports": "[]ContainerPort", "env": "[]EnvVar"},
    "ContainerPort": {f: _ANY for f in ("name", "hostPort", "containerPort", "protocol", "hostIP")},
    "EnvVar": {f: _ANY for f in ("name", "value", "valueFrom")},
    "ServiceSpec": {f: _ANY for f in (
        "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity", "loadBalancerIP",
        "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy", "healthCheckNodePort",
        "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
        "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy", "trafficDistribution")}
    | {"ports": "[]ServicePort"},
    "ServicePort": {f: _ANY for f in ("name", "protocol", "appProtocol", "port", "targetPort", "nodePort")},
}


def _shape_unknown(type_name: str, obj: Any, path: str, prune: bool) -> list[str]:
    if type_name.startswith("[]"):
        found = []
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                found += _shape_unknown(type_name[2:], item, f"{path}[{i}]", prune)
        return found
    shape = BUILTIN_SHAPES.get(type_name)
    if shape is None or not isinstance(obj, dict):
        return []
    found = []
    for k in list(obj):
        child = f"{path}.{k}" if path else k
        if k not in shape:
            found.append(child)
            if prune:
                del obj[k]
        elif shape[k]:
            found += _shape_unknown(shape[k], obj[k], child, prune)
    return found


def builtin_unknown_fields(kind: str, obj: dict[str, Any], prune: bool = False) -> list[str]:
    """Paths of fields a built-in type does not have (pruned from ``obj`` with ``prune``)."""
    shape = BUILTIN_SHAPES.get(kind)
    found: list[str] = []
    for k in list(obj):
        if k in ("apiVersion", "kind"):
            continue
        if k == "metadata":
            found += _shape_unknown("ObjectMeta", obj[k], "metadata", prune)
        elif shape is not None and k not in shape:
            found.append(k)
            if prune:
                del obj[k]
        elif shape is not None and shape[k]:
            found += _shape_unknown(shape[k], obj[k], k, prune)
    return found


# ----------------------------------------------------------------------------- CRD schemas

def _to_json_schema(node: Any) -> Any:
    """Translate an OpenAPI v3 structural schema into a Draft 4 JSON Schema.

    ``nullable`` becomes a ``null`` type, ``x-kubernetes-int-or-string`` an integer/string
    union; other ``x-kubernetes-*`` extensions (CEL validations, list types) are left out:
    jsonschema ignores unknown keywords, and CEL cannot be evaluated here.
    """
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in ("description", "example", "externalDocs"):
            continue
        if k.startswith("x-kubernetes-"):
            continue
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {name: _to_json_schema(s) for name, s in v.items()}
        elif k == "format":
            continue  # Kubernetes only checks a few formats; int32 etc. are advisory here.
        else:
            out[k] = _to_json_schema(v)
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        t = out["type"]
        out["type"] = [t, "null"] if isinstance(t, str) else list(t) + ["null"]
    out.pop("nullable", None)
    return out


_validators: dict[tuple[str, str], jsonschema.Draft4Validator] = {}


def crd_validator(fingerprint: str, version: str, schema: dict) -> jsonschema.Draft4Validator:
    """Validator for one CRD version; the fingerprint is a hash of the CRD spec, so cached
    validators are shared by every cluster in the process."""
    key = (fingerprint, version)
    validator = _validators.get(key)
    if validator is None:
        converted = _to_json_schema(schema)
        # metadata is validated by the server itself, not by the CRD schema.
        if isinstance(converted.get("properties"), dict):
            converted["properties"].pop("metadata", None)
        validator = jsonschema.Draft4Validator(converted)
        _validators[key] = validator
    return validator


def format_path(parts: Any) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return json.dumps(_type_name(value))
    return json.dumps(value)


def _error_to_cause(err: jsonschema.ValidationError) -> dict[str, str]:
    path = format_path(err.absolute_path)
    v, inst = err.validator, err.instance
    body = path or "<root>"
    if v == "enum":
        allowed = ", ".join(json.dumps(x) for x in err.validator_value)
        return cause("FieldValueNotSupported", path,
                     f"Unsupported value: {_go_value(inst)}: supported values: {allowed}")
    if v == "required":
        missing = next((r for r in err.validator_value if isinstance(inst, dict) and r not in inst),
                       err.validator_value[0])
        return cause("FieldValueRequired", f"{path}.{missing}" if path else missing, "Required value")
    if v == "type":
        expected = err.validator_value
        if isinstance(expected, list):
            expected = [t for t in expected if t != "null"]
            expected = expected[0] if len(expected) == 1 else "/".join(expected)
        return cause("FieldValueTypeInvalid", path,
                     f"Invalid value: {json.dumps(_type_name(inst))}: {body} in body must be of type "
                     f"{expected}: {json.dumps(_type_name(inst))}")
    if v in ("minimum", "maximum"):
        excl = err.schema.get("exclusiveMinimum" if v == "minimum" else "exclusiveMaximum")
        word = {"minimum": "greater than", "maximum": "less than"}[v]
        op = word if excl else f"{word} or equal to"
        return cause("FieldValueInvalid", path,
                     f"Invalid value: {json.dumps(inst)}: {body} in body should be {op} {err.validator_value}")
    if v in ("maxLength", "minLength"):
        word = "longer" if v == "maxLength" else "shorter"
        limit = err.validator_value
        return cause("FieldValueTooLong" if v == "maxLength" else "FieldValueInvalid", path,
                     f"Invalid value: {_go_value(inst)}: {body} in body should be at most {limit} chars long"
                     if v == "maxLength" else
                     f"Invalid value: {_go_value(inst)}: {body} in body should be at least {limit} chars long")
    if v in ("maxItems", "minItems"):
        if v == "maxItems":
            return cause("FieldValueTooMany", path,
                         f"Too many: {len(inst)}: must have at most {err.validator_value} items")
        return cause("FieldValueInvalid", path,
                     f"Invalid value: {len(inst)}: {body} in body should have at least {err.validator_value} items")
    if v == "pattern":
        return cause("FieldValueInvalid", path,
                     f"Invalid value: {_go_value(inst)}: {body} in body should match '{err.validator_value}'")
    if v == "oneOf":
        valid = sum(1 for s in err.validator_value if jsonschema.Draft4Validator(s).is_valid(inst))
        found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
        return cause("FieldValueInvalid", path,
                     f'Invalid value: {_go_value(inst)}: "{body}" must validate one and only one schema (oneOf). {found}')
    if v == "anyOf":
        return cause("FieldValueInvalid", path,
                     f'Invalid value: {_go_value(inst)}: "{body}" must validate at least one schema (anyOf)')
    if v == "not":
        return cause("FieldValueInvalid", path,
                     f'Invalid value: {_go_value(inst)}: "{body}" must not validate the schema (not)')
    if v == "additionalProperties":
        return cause("FieldValueInvalid", path, f"Invalid value: {_go_value(inst)}: {err.message}")
    return cause("FieldValueInvalid", path, f"Invalid value: {_go_value(inst)}: {err.message}")


def validate_custom_resource(fingerprint: str, version: str, schema: dict, obj: dict) -> list[dict[str, str]]:
    validator = crd_validator(fingerprint, version, schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    causes, seen = [], set()
    found = [_error_to_cause(err) for err in errors]
    if not found:  # Kubernetes runs CEL rules only on objects that pass the schema
        found = cel_violations(schema, obj)
    for c in found:
        key = (c["field"], c["message"])
        if key not in seen:
            seen.add(key)
            causes.append(c)
    return causes


# ----------------------------------------------------------------------------- CEL rules

_DURATION_RE = re.compile(r"^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: Any) -> float | None:
    """Seconds in a Go duration string (``1h30m``, ``500ms``), or None when malformed."""
    if not isinstance(text, str):
        return None
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION_RE.match(text):
        return None
    total = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))
    return -total if text.startswith("-") else total


def _port_keys_ok(value: Any) -> bool:
    try:
        return all(0 < int(k) <= 65535 for k in value)
    except (TypeError, ValueError):
        return False


_ONLY_ONE_RE = re.compile(r"^\((?:\(has\(self\.\w+\) \? 1 : 0\)\s*\+\s*)+\(has\(self\.\w+\) \? 1 : 0\)\) <= 1$|"
                          r"^(?:\(has\(self\.\w+\) \? 1 : 0\)\s*\+\s*)+\(has\(self\.\w+\) \? 1 : 0\) <= 1$")

# The x-kubernetes-validations (CEL) rules Istio's schemas use most, evaluated in Python;
# rules not listed here are not checked (no CEL interpreter).
CEL_RULES: dict[str, Any] = {
    "duration(self) >= duration('1ms')": lambda v: (go_duration(v) or 0) >= 0.001,
    "0 < self && self <= 65535": lambda v: isinstance(v, int) and 0 < v <= 65535,
    '!self.contains("*")': lambda v: "*" not in v,
    'self != "*"': lambda v: v != "*",
    'self.all(key, !key.contains("*"))': lambda v: all("*" not in k for k in v),
    "self.all(key, key.size() != 0)": lambda v: all(len(k) for k in v),
    "self.all(key, 0 < int(key) && int(key) <= 65535)": _port_keys_ok,
    "self.size() == 0": lambda v: len(v) == 0,
    "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
    "self.selector.matchLabels : {}).size() > 0) : true":
        lambda v: "portLevelMtls" not in v or bool((v.get("selector") or {}).get("matchLabels")),
}


def _cel_check(rule: str, value: Any) -> bool | None:
    """True/False for a rule we evaluate; None for one we cannot."""
    fn = CEL_RULES.get(rule)
    if fn is not None:
        try:
            return bool(fn(value))
        except (TypeError, AttributeError):
            return False
    if _ONLY_ONE_RE.match(rule) and isinstance(value, dict):
        return sum(1 for f in re.findall(r"has\(self\.(\w+)\)", rule) if f in value) <= 1
    return None


def cel_violations(schema: dict, obj: Any, path: str = "") -> list[dict[str, str]]:
    """Causes for the x-kubernetes-validations rules (of :data:`CEL_RULES`) ``obj`` breaks."""
    out: list[dict[str, str]] = []
    if not isinstance(schema, dict):
        return out
    for v in schema.get("x-kubernetes-validations") or []:
        if _cel_check(v.get("rule", ""), obj) is False:
            type_name = schema.get("type") or _type_name(obj)
            out.append(cause("FieldValueInvalid", path,
                             f"Invalid value: {json.dumps(type_name)}: {v.get('message') or 'failed rule: ' + v['rule']}"))
    if isinstance(obj, dict):
        props = _merged_properties(schema)
        additional = schema.get("additionalProperties")
        for k, val in obj.items():
            child = f"{path}.{k}" if path else k
            if k in props:
                out += cel_violations(props[k], val, child)
            elif isinstance(additional, dict):
                out += cel_violations(additional, val, child)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, x in enumerate(obj):
            out += cel_violations(schema["items"], x, f"{path}[{i}]")
    return out


def drop_nulls(obj: Any) -> Any:
    """Kubernetes drops ``null`` fields of custom resources (non-nullable schemas) on decode."""
    if isinstance(obj, dict):
        return {k: drop_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_nulls(x) for x in obj]
    return obj


def _schema_allows_unknown(schema: dict) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _merged_properties(schema: dict) -> dict[str, dict]:
    props = dict(schema.get("properties") or {})
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, dict):
                for name, s in (sub.get("properties") or {}).items():
                    props.setdefault(name, s)
    return props


def find_unknown_fields(schema: dict, obj: Any, path: str = "", prune: bool = False) -> list[str]:
    """Paths of fields not declared in ``schema`` (``spec.http[0].foo`` style).

    With ``prune`` the unknown fields are also removed from ``obj`` in place, as the API server
    prunes them from custom resources. ``metadata`` is handled by the caller.
    """
    found: list[str] = []
    if isinstance(obj, dict):
        if _schema_allows_unknown(schema) and not schema.get("properties"):
            return found
        props = _merged_properties(schema)
        additional = schema.get("additionalProperties")
        for k in list(obj):
            child_path = f"{path}.{k}" if path else k
            if not path and k in ("apiVersion", "kind", "metadata"):
                continue
            if k in props:
                found += find_unknown_fields(props[k], obj[k], child_path, prune)
            elif isinstance(additional, dict):
                found += find_unknown_fields(additional, obj[k], child_path, prune)
            elif additional is True or _schema_allows_unknown(schema):
                continue
            else:
                found.append(child_path)
                if prune:
                    del obj[k]
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(obj):
                found += find_unknown_fields(items, x, f"{path}[{i}]", prune)
    return found


def prune_copy(schema: dict, obj: dict) -> dict:
    out = copy.deepcopy(obj)
    find_unknown_fields(schema, out, prune=True)
    return out
