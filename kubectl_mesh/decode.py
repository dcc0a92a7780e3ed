"""JSON documents from kubectl or manifests, decoded as plain dicts and lists.

`decode(data)` is the one place JSON becomes objects, for both the cluster read
(snapshot.read_cluster, through Runner.kubectl_json) and manifests (-f), so that
limits or checks added here apply to both.

With `checks_only=True` (read-only commands such as `diagnose`), it decodes only
the fields the checks read: a typed decoder (msgspec, in C) skips the rest of each
object without building it — managedFields, volumes, probes, most of the status —
which is most of a real pod. What comes back is still plain dicts and lists, so
the Snapshot and the checks see the same model either way; only absent keys
differ. An object that does not have the expected shape (a hostile or broken
manifest: metadata that is a string, say) is decoded in full instead, so the
usual validation reports it.

Never use `checks_only` for objects that are written back to the cluster: the
fields skipped would be lost.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec


class DecodeError(ValueError):
    """Input that is not JSON; `lineno` and `msg` as json.JSONDecodeError has them."""

    def __init__(self, msg: str, lineno: int):
        super().__init__(f"{msg} (line {lineno})")
        self.msg = msg
        self.lineno = lineno


# -- the fields the checks read ------------------------------------------------------
class OwnerReference(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    name: Any
    uid: Any
    controller: Any


class Metadata(TypedDict, total=False):
    name: Any
    generateName: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    generation: Any
    creationTimestamp: Any
    deletionTimestamp: Any
    labels: Any
    annotations: Any
    ownerReferences: list[OwnerReference]


class Container(TypedDict, total=False):
    name: Any
    image: Any
    command: Any
    args: Any
    env: Any
    ports: Any
    resources: Any
    restartPolicy: Any


class ContainerStatus(TypedDict, total=False):
    name: Any
    image: Any
    ready: Any
    started: Any
    restartCount: Any


class Condition(TypedDict, total=False):
    type: Any
    status: Any
    reason: Any
    message: Any


class Status(TypedDict, total=False):
    # Pod
    phase: Any
    podIP: Any
    conditions: list[Condition]
    containerStatuses: list[ContainerStatus]
    initContainerStatuses: list[ContainerStatus]
    # workloads
    replicas: Any
    readyReplicas: Any
    availableReplicas: Any
    updatedReplicas: Any
    currentReplicas: Any
    observedGeneration: Any
    updateRevision: Any
    currentRevision: Any
    numberAvailable: Any
    numberReady: Any
    desiredNumberScheduled: Any
    updatedNumberScheduled: Any
    currentNumberScheduled: Any


# The keys of `spec` kept: a pod's (narrowed above), and every top-level spec field of
# the other kinds the plugin reads (Kubernetes' workloads, Service, Namespace, Node,
# Istio's and Gateway API's kinds), kept whole. tests/unit/test_decode.py checks that
# this covers every spec field of Istio's CRD schemas.
POD_SPEC_KEYS = ("nodeName", "hostNetwork", "serviceAccountName", "restartPolicy")
OTHER_SPEC_KEYS = (
    # apps/v1 workloads, batch
    "replicas", "selector", "template", "strategy", "updateStrategy", "minReadySeconds", "paused",
    "progressDeadlineSeconds", "revisionHistoryLimit", "serviceName", "podManagementPolicy", "jobTemplate",
    "schedule", "suspend", "parallelism", "completions",
    # Service, Namespace, Node
    "ports", "type", "clusterIP", "clusterIPs", "externalName", "externalIPs", "loadBalancerIP",
    "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "externalTrafficPolicy",
    "publishNotReadyAddresses", "appProtocol", "finalizers", "podCIDR", "podCIDRs", "providerID", "taints",
    "unschedulable",
    # networking.istio.io, security.istio.io, telemetry and extensions
    "hosts", "gateways", "http", "tls", "tcp", "exportTo", "host", "trafficPolicy", "subsets", "workloadSelector",
    "addresses", "location", "resolution", "endpoints", "subjectAltNames", "servers", "egress", "ingress",
    "outboundTrafficPolicy", "inboundConnectionPool", "mtls", "portLevelMtls", "action", "rules", "provider",
    "targetRef", "targetRefs", "network", "labels", "weight", "locality", "serviceAccount", "address",
    "configPatches", "priority", "tracing", "metrics", "accessLogging", "url", "phase", "pluginConfig",
    "pluginName", "imagePullPolicy", "imagePullSecret", "sha256", "verificationKey", "vmConfig", "match",
    "failStrategy", "jwtRules", "jwks", "issuer", "audiences", "metadata", "probe", "lua", "wasm",
    "concurrency", "environmentVariables", "image",
    # gateway.networking.k8s.io
    "parentRefs", "hostnames", "listeners", "gatewayClassName", "controllerName", "backendRefs", "from", "to",
    "infrastructure",
)


def _spec_type(container_type):
    fields = {"containers": list[container_type], "initContainers": list[container_type]}
    fields.update({key: Any for key in POD_SPEC_KEYS})
    fields.update({key: Any for key in OTHER_SPEC_KEYS})
    return fields


class Template(TypedDict, total=False):
    metadata: Metadata
    spec: Spec  # a string annotation (see the __future__ import), resolved when the decoder is built


Spec = TypedDict("Spec", {**_spec_type(Container), "template": Template}, total=False)


class Object(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: Metadata
    spec: Spec
    status: Status
    items: list[Object]
    data: Any  # a ConfigMap's (Istio's mesh and injector settings)


_DOCUMENT = Object | list[Object]
_checks_decoder = None
_any_decoder = None


def decode(data: bytes | bytearray | memoryview | str, *, checks_only: bool = False) -> Any:
    """The JSON document in `data` (a file's bytes, a memory map, kubectl's output)."""
    global _checks_decoder, _any_decoder
    if checks_only:
        if _checks_decoder is None:
            _checks_decoder = msgspec.json.Decoder(_DOCUMENT)
        try:
            return _checks_decoder.decode(data)
        except msgspec.ValidationError:
            pass  # not shaped like Kubernetes objects: decode all of it, and let the caller judge
        except msgspec.DecodeError:
            raise _decode_error(data) from None
    if _any_decoder is None:
        _any_decoder = msgspec.json.Decoder()
    try:
        return _any_decoder.decode(data)
    except msgspec.DecodeError:
        raise _decode_error(data) from None


# kubectl's `get -o json` of several objects: a List, indented 4 spaces a level, keys sorted.
# Its items sit at 8 spaces, so "\n        }," ends an item and nothing else (a string
# cannot hold a raw newline): the items can be decoded a batch at a time while the
# file is read, so the file never has to be in memory whole beside its objects.
_LIST_HEAD = b'{\n    "apiVersion": "v1",\n    "items": [\n'
_ITEM_END = b"\n        },\n"
_ITEMS_END = b"\n    ],\n"
BLOCK = 8 << 20


def decode_file(stream, *, checks_only: bool = False) -> Any:
    """The JSON document in a binary file (read from where it stands)."""
    head = stream.read(len(_LIST_HEAD))
    if head == _LIST_HEAD:
        document = _kubectl_list(stream, checks_only)
        if document is not None:
            return document
        stream.seek(0)
        head = b""
    import mmap

    try:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError):  # empty, a pipe, not a real file
        return decode(head + stream.read(), checks_only=checks_only)
    with mapped:
        view = memoryview(mapped)
        try:
            return decode(view, checks_only=checks_only)
        finally:
            view.release()


def _kubectl_list(stream, checks_only: bool) -> dict | None:
    """kubectl's List decoded batch by batch; None when the file is not laid out so.

    One buffer is reused for the whole file (no copy of it, no fresh pages to fault
    in): byte 0 is "[", the file's bytes follow, and a batch of whole items is decoded
    in place by writing "]" over the comma after its last item."""
    global _checks_items, _any_items
    if checks_only:
        if _checks_items is None:
            _checks_items = msgspec.json.Decoder(list[Object])
        decoder = _checks_items
    else:
        if _any_items is None:
            _any_items = msgspec.json.Decoder(list)
        decoder = _any_items
    start = stream.tell()
    items: list = []
    buf = bytearray(BLOCK + 1)
    buf[0] = 0x5B  # "["
    filled = 1
    try:
        while True:
            if filled == len(buf):  # one item larger than the buffer
                buf.extend(bytes(len(buf)))
            with memoryview(buf) as view:
                count = stream.readinto(view[filled:])
            if not count:
                break
            searched_from = max(1, filled - len(_ITEM_END))
            filled += count
            cut = buf.rfind(_ITEM_END, searched_from, filled)
            if cut < 0:
                continue
            buf[cut + 10] = 0x5D  # "]" over the "," after the item's "}"
            with memoryview(buf) as view:
                items += decoder.decode(view[: cut + 11])
            rest = cut + len(_ITEM_END)
            buf[1: filled - rest + 1] = buf[rest:filled]
            filled -= rest - 1
        end = buf.rfind(_ITEMS_END, 1, filled)
        if end < 0:
            raise ValueError("not kubectl's layout")
        if buf[1:end].strip():
            buf[end] = 0x5D  # "]" over the newline before "    ],"
            with memoryview(buf) as view:
                items += decoder.decode(view[: end + 1])
        brace = end + len(_ITEMS_END) - 2  # the "," after "]"
        buf[brace] = 0x7B  # "{"
        with memoryview(buf) as view:
            trailer = msgspec.json.decode(view[brace:filled])
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        stream.seek(start - len(_LIST_HEAD))
        return None
    if not isinstance(trailer, dict):
        stream.seek(start - len(_LIST_HEAD))
        return None
    return {"apiVersion": "v1", "items": items, **trailer}


_checks_items = None
_any_items = None


def _decode_error(data) -> DecodeError:
    """What stdlib json says about bad input (its line number, its wording): only on the error path."""
    import json

    text = data if isinstance(data, str) else bytes(data).decode("utf-8")  # UnicodeDecodeError: not text
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return DecodeError(exc.msg, exc.lineno)
    except RecursionError:
        return DecodeError("nested too deeply", 1)
    return DecodeError("not valid JSON", 1)  # msgspec refused what json accepts (e.g. a lone surrogate)
