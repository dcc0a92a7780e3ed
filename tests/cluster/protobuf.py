"""Decoding of Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

kubectl's typed clients (``kubectl create namespace|configmap|secret|serviceaccount|
deployment|service``, ``kubectl run``) send protobuf and do not fall back to JSON when a
server refuses it, so the server decodes the kinds those commands create. Field numbers
follow Kubernetes' ``generated.proto`` files; fields not listed here are dropped.

Kubernetes' encoder writes every non-pointer field, empty or not, so zero values of
non-pointer fields are dropped again to get the JSON the client meant (``omitempty``);
pointer fields (marked ``?``) keep their zero values (``replicas: 0`` matters).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type). Types: string, bytes, int, bool (suffix "?" =
# pointer, keeps zero), "[]" prefix = repeated, "msg:X", "map:V" (string keys), "time",
# "quantity", "intstr".
S: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "rawbytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
        4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
        7: ("generation", "int"), 8: ("creationTimestamp", "time"), 9: ("deletionTimestamp", "time"),
        10: ("deletionGracePeriodSeconds", "int?"), 11: ("labels", "map:string"),
        12: ("annotations", "map:string"), 13: ("ownerReferences", "[]msg:OwnerReference"),
        14: ("finalizers", "[]string"),
    },
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool?"),
                       7: ("blockOwnerDeletion", "bool?")},
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec"),
                  3: ("status", "msg:NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ConfigMap": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:string"), 3: ("binaryData", "map:bytes"),
                  4: ("immutable", "bool?")},
    "Secret": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool?")},
    "ServiceAccount": {1: ("metadata", "msg:ObjectMeta"), 2: ("secrets", "[]msg:ObjectReference"),
                       3: ("imagePullSecrets", "[]msg:LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool?")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
                        7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec"), 3: ("status", "msg:Empty")},
    "ServiceSpec": {1: ("ports", "[]msg:ServicePort"), 2: ("selector", "map:string"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    8: ("loadBalancerIP", "string"), 10: ("externalName", "string"),
                    11: ("externalTrafficPolicy", "string"), 13: ("publishNotReadyAddresses", "bool"),
                    18: ("clusterIPs", "[]string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "intstr"), 5: ("nodePort", "int"), 6: ("appProtocol", "string?")},
    "Pod": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec"), 3: ("status", "msg:Empty")},
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {
        1: ("volumes", "[]msg:Volume"), 2: ("containers", "[]msg:Container"), 3: ("restartPolicy", "string"),
        4: ("terminationGracePeriodSeconds", "int?"), 5: ("activeDeadlineSeconds", "int?"),
        6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map:string"), 8: ("serviceAccountName", "string"),
        9: ("serviceAccount", "string"), 10: ("nodeName", "string"), 11: ("hostNetwork", "bool"),
        15: ("imagePullSecrets", "[]msg:LocalObjectReference"), 16: ("hostname", "string"),
        17: ("subdomain", "string"), 19: ("schedulerName", "string"), 20: ("initContainers", "[]msg:Container"),
        21: ("automountServiceAccountToken", "bool?"), 24: ("priorityClassName", "string"),
        25: ("priority", "int?"), 30: ("enableServiceLinks", "bool?"),
    },
    "Container": {
        1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"), 4: ("args", "[]string"),
        5: ("workingDir", "string"), 6: ("ports", "[]msg:ContainerPort"), 7: ("env", "[]msg:EnvVar"),
        8: ("resources", "msg:ResourceRequirements"), 9: ("volumeMounts", "[]msg:VolumeMount"),
        13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"), 18: ("tty", "bool"), 20: ("terminationMessagePolicy", "string"),
        24: ("restartPolicy", "string?"),
    },
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "VolumeMount": {1: ("name", "string"), 2: ("readOnly", "bool"), 3: ("mountPath", "string"),
                    4: ("subPath", "string")},
    "Volume": {1: ("name", "string")},
    "ResourceRequirements": {1: ("limits", "map:quantity"), 2: ("requests", "map:quantity")},
    "Deployment": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:DeploymentSpec"), 3: ("status", "msg:Empty")},
    "DeploymentSpec": {1: ("replicas", "int?"), 2: ("selector", "msg:LabelSelector"),
                       3: ("template", "msg:PodTemplateSpec"), 4: ("strategy", "msg:DeploymentStrategy"),
                       5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int?"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int?")},
    "DeploymentStrategy": {1: ("type", "string")},
    "LabelSelector": {1: ("matchLabels", "map:string"),
                      2: ("matchExpressions", "[]msg:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "SelfSubjectAccessReview": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:SelfSubjectAccessReviewSpec"),
                                3: ("status", "msg:Empty")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "msg:ResourceAttributes"),
                                    2: ("nonResourceAttributes", "msg:NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                           7: ("name", "string")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectRulesReview": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:SelfSubjectRulesReviewSpec"),
                               3: ("status", "msg:Empty")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "SelfSubjectReview": {1: ("metadata", "msg:ObjectMeta"), 2: ("status", "msg:Empty")},
    # rbac.authorization.k8s.io/v1 (`kubectl create role|clusterrole|rolebinding|clusterrolebinding`)
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
                   4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "Role": {1: ("metadata", "msg:ObjectMeta"), 2: ("rules", "[]msg:PolicyRule")},
    "ClusterRole": {1: ("metadata", "msg:ObjectMeta"), 2: ("rules", "[]msg:PolicyRule"),
                    3: ("aggregationRule", "msg:AggregationRule")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]msg:LabelSelector")},
    "RoleBinding": {1: ("metadata", "msg:ObjectMeta"), 2: ("subjects", "[]msg:Subject"), 3: ("roleRef", "msg:RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "Empty": {},
}

# Top-level kinds: (apiVersion, kind) -> message.
KINDS = {
    ("v1", "Namespace"): "Namespace", ("v1", "ConfigMap"): "ConfigMap", ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount", ("v1", "Service"): "Service", ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",
}


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            val, i = data[i:i + n], i + n
        elif wire == 1:
            val, i = data[i:i + 8], i + 8
        elif wire == 5:
            val, i = data[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((num, wire, val))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(typ: str, val: Any) -> Any:
    base = typ.rstrip("?")
    if base == "string":
        return val.decode("utf-8")
    if base == "bytes":
        return base64.b64encode(val).decode()
    if base == "rawbytes":
        return val
    if base == "int":
        return _signed(val)
    if base == "bool":
        return bool(val)
    if base == "time":
        secs = dict((n, v) for n, _, v in _fields(val)).get(1, 0)
        if not secs:
            return None
        return datetime.datetime.fromtimestamp(_signed(secs), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if base == "quantity":
        return dict((n, v) for n, _, v in _fields(val)).get(1, b"").decode()
    if base == "intstr":
        f = {n: v for n, _, v in _fields(val)}
        return f.get(3, b"").decode() if f.get(1, 0) == 1 else _signed(f.get(2, 0))
    if base.startswith("msg:"):
        return decode_message(base[4:], val)
    raise ProtobufError(f"unknown type {typ}")


def _is_zero(v: Any) -> bool:
    return v is None or v == "" or v == 0 or v is False or v == []


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    schema = S[name]
    out: dict[str, Any] = {}
    for num, _, val in _fields(data):
        if num not in schema:
            continue
        key, typ = schema[num]
        if typ.startswith("[]"):
            out.setdefault(key, []).append(_scalar(typ[2:], val))
        elif typ.startswith("map:"):
            entry = {n: v for n, _, v in _fields(val)}
            k = entry.get(1, b"").decode()
            out.setdefault(key, {})[k] = _scalar(typ[4:], entry.get(2, b""))
        else:
            out[key] = _scalar(typ, val)
    for key, typ in schema.values():
        if key in out and not typ.endswith("?") and not typ.startswith("msg:") and _is_zero(out[key]):
            del out[key]
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object (with the ``k8s\\0`` envelope) as its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    unknown = decode_message("Unknown", body[len(MAGIC):])
    tm = unknown.get("typeMeta") or {}
    api_version, kind = tm.get("apiVersion", ""), tm.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufError(f"protobuf decoding of {kind} ({api_version}) is not supported by the test server")
    obj = decode_message(message, unknown.get("raw", b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
