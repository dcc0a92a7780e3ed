"""HTTP front end: routes Kubernetes API paths to :class:`~tests.cluster.core.Core`.

Every failure is answered with a ``Status`` object (unexpected exceptions become a 500
``InternalError``), so kubectl never sees a traceback or a non-Status error body.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import ssl
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from . import discovery, errors, openapi, protobuf, requestinfo, service_proxy, tables
from .auth import impersonate
from .core import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from .errors import ApiError
from .faults import REASONS, RequestInfo
from .rbac import Identity
from .rbac_policy import REQUESTER
from .registry import ResourceType
from .selectors import parse_field_selector, parse_label_selector

if TYPE_CHECKING:
    from .cluster import TestCluster


PROTOBUF = "application/vnd.kubernetes.protobuf"


class DropConnection(Exception):
    """Close the socket without answering (a fault switch)."""


@dataclass
class RequestRecord:
    """One request as the server saw it (``cluster.requests``)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: str
    accept: str = ""
    verb: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    seconds: float = 0.0  # time the server took to answer (a watch: how long it streamed)
    user: str = ""  # who the request acted as (after impersonation); "" when authentication failed

    def json(self) -> Any:
        if not self.body:
            return None
        if self.content_type.startswith(APPLY_PATCH):
            return yaml.safe_load(self.body)
        if self.content_type == PROTOBUF:
            return protobuf.decode(self.raw)
        return json.loads(self.body)


@dataclass
class Route:
    group: str
    version: str
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-test"
    sys_version = ""
    # Buffered writes (flushed once per response) and TCP_NODELAY: without them headers and body
    # leave in separate segments and Nagle + delayed ACK add ~40 ms to every request.
    wbufsize = 1 << 16
    cluster: TestCluster  # set on the server subclass

    # -- plumbing -----------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        # The TLS handshake runs here, in the connection's own thread, not in the accept loop.
        self.request.settimeout(10)
        self.request.do_handshake()
        self.request.settimeout(None)
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        cluster = self.server.cluster  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self._read_body()
        record = RequestRecord(
            method=method, path=url.path, query=query,
            content_type=(self.headers.get("Content-Type") or "").split(";")[0].strip(),
            body=raw.decode("utf-8", "replace"), accept=self.headers.get("Accept", ""),
            headers={k: v for k, v in self.headers.items()}, raw=raw,
        )
        cluster.requests.append(record)
        started = time.monotonic()
        self._record = record
        self._headers_sent = False
        requester = None
        try:
            self._identity = self._authorize(cluster, method, url.path, query)
            record.user = self._identity.name
            requester = REQUESTER.set(self._identity)
            self._route(cluster, method, url.path, query, raw, record)
        except DropConnection:
            self.close_connection = True
            record.status = -1
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except ApiError as e:
            self._send_status(e)
        except Exception as e:  # noqa: BLE001 - never let a traceback reach the client as anything but a Status
            cluster.handler_errors.append(f"{method} {self.path}: {e!r}\n{traceback.format_exc()}")
            if self._headers_sent:
                self.close_connection = True
            else:
                self._send_status(errors.internal(f"{type(e).__name__}: {e}"))
        finally:
            if requester is not None:
                REQUESTER.reset(requester)
            record.seconds = time.monotonic() - started
            log = os.environ.get("TEST_CLUSTER_LOG")
            if log:  # a debugging aid: one line per request
                with open(log, "a", encoding="utf-8") as f:
                    f.write(f"{time.time():.3f} {record.seconds:7.3f}s {record.status} {method} {self.path}\n")

    # -- responses ----------------------------------------------------------------

    def _send(self, code: int, data: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None, warnings: list[str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for w in warnings or []:
            self.send_header("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
        self.end_headers()
        self._headers_sent = True
        self.wfile.write(data)
        self._record.status = code

    def _send_json(self, code: int, obj: Any, warnings: list[str] | None = None) -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), warnings=warnings)

    def _send_status(self, err: ApiError) -> None:
        if self._headers_sent:
            self.close_connection = True
            return
        self._send(err.code, json.dumps(err.status()).encode(), headers=err.headers)

    # -- authentication and authorization -------------------------------------------

    def _authorize(self, cluster: TestCluster, method: str, path: str, query: dict[str, str]) -> Identity:
        """Authenticate, impersonate, then authorize the request's attributes (401/403 as
        kube-apiserver's filters answer them, before any routing)."""
        requester = cluster.users.authenticate(self.headers.get("Authorization"))
        authorizer = cluster.core.authorizer
        identity = impersonate(requester, self.headers.items(),
                               lambda who, attrs: authorizer.authorize(who, attrs)[0])
        attrs = requestinfo.parse(method, path, query)
        allowed, reason = authorizer.authorize(identity, attrs)
        if not allowed:
            raise errors.forbidden_request(attrs, identity.name, reason)
        return identity

    # -- routing ------------------------------------------------------------------

    def _route(self, cluster: TestCluster, method: str, path: str, query: dict[str, str], raw: bytes,
               record: RequestRecord) -> None:
        core = cluster.core
        parts = [p for p in path.split("/") if p]
        accept = self.headers.get("Accept", "")
        if method == "GET" and self._non_resource(cluster, parts, accept):
            return
        proxied = service_proxy.match(parts)
        if proxied is not None:
            return service_proxy.serve(self, cluster, method, proxied, raw)
        route = self._resolve(cluster, parts)
        if route is None:
            raise errors.page_not_found()
        verb = self._verb(method, route, query)
        record.verb, record.resource, record.subresource = verb, route.rt.plural, route.subresource
        record.namespace, record.name = route.namespace, route.name
        self._faults(cluster, route, verb)

        rt, version, ns, name, sub = route.rt, route.version, route.namespace, route.name, route.subresource
        dry_run = query.get("dryRun") == "All"
        validation = query.get("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{validation}"')

        if verb == "get":
            if sub == "scale":
                return self._send_json(200, core.scale_view(rt, ns or "", name))
            if sub == "log":
                core.get(rt, version, ns, name)
                return self._send(200, b"", content_type="text/plain")
            obj = core.get(rt, version, ns, name)
            return self._send_object(rt, version, [obj], accept, query, single=True)
        if verb == "list":
            items, rv = core.list(rt, version, ns, query.get("labelSelector"), query.get("fieldSelector"))
            return self._send_list(rt, version, items, rv, accept, query)
        if verb == "watch":
            return self._watch(cluster, route, query, accept)
        if verb == "create" and rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews"):
            return self._access_review(cluster, self._decode(raw, record.content_type))
        if verb == "create" and rt.key == ("authorization.k8s.io", "selfsubjectrulesreviews"):
            return self._rules_review(cluster, self._decode(raw, record.content_type))
        if verb == "create" and rt.key == ("authentication.k8s.io", "selfsubjectreviews"):
            return self._who_am_i()
        if verb == "create":
            body = self._decode(raw, record.content_type)
            obj, warnings = core.create(rt, version, ns, body, dry_run=dry_run, field_validation=validation)
            return self._send_json(201, obj, warnings)
        if verb == "update":
            body = self._decode(raw, record.content_type)
            obj, warnings = core.update(rt, version, ns, name, body, subresource=sub, dry_run=dry_run,
                                        field_validation=validation)
            return self._send_json(200, obj, warnings)
        if verb == "patch":
            body = self._decode(raw, record.content_type)
            obj, warnings = core.patch(rt, version, ns, name, record.content_type, body, subresource=sub,
                                       dry_run=dry_run, field_validation=validation,
                                       field_manager=query.get("fieldManager"))
            return self._send_json(200, obj, warnings)
        if verb in ("delete", "deletecollection"):
            opts = self._decode(raw, record.content_type) if raw else {}
            opts = opts if isinstance(opts, dict) else {}
            propagation = opts.get("propagationPolicy") or query.get("propagationPolicy")
            if opts.get("orphanDependents") is True:
                propagation = "Orphan"
            dry_run = dry_run or "All" in (opts.get("dryRun") or [])
            if verb == "deletecollection":
                items = core.delete_collection(rt, version, ns, query.get("labelSelector"),
                                               query.get("fieldSelector"), propagation=propagation, dry_run=dry_run)
                return self._send_json(200, {"kind": rt.list_kind, "apiVersion": rt.api_version(version),
                                             "metadata": {}, "items": items})
            obj = core.delete(rt, version, ns, name, propagation=propagation, dry_run=dry_run,
                              preconditions=opts.get("preconditions"))
            if rt.key in (("", "pods"), ("", "namespaces")) or rt.is_custom:
                return self._send_json(200, obj)
            return self._send_json(200, errors.status_success(name or "", rt.group, rt.plural,
                                                              obj["metadata"].get("uid")))
        raise errors.method_not_allowed()

    def _access_review(self, cluster: TestCluster, review: Any) -> None:
        """``kubectl auth can-i``: the same decision the request itself would get (RBAC, and
        any ``forbid`` fault switch covering it)."""
        spec = (review or {}).get("spec") or {}
        attrs = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if attrs:
            request = requestinfo.RequestAttributes(
                verb=attrs.get("verb", ""), path="", resource_request=True, api_group=attrs.get("group", ""),
                api_version=attrs.get("version", ""), namespace=attrs.get("namespace") or "",
                resource=attrs.get("resource", ""), subresource=attrs.get("subresource", ""),
                name=attrs.get("name") or "")
        elif non_resource:
            request = requestinfo.RequestAttributes(verb=non_resource.get("verb", ""),
                                                    path=non_resource.get("path", ""), resource_request=False)
        else:
            raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "", [errors.cause(
                "FieldValueRequired", "spec.resourceAttributes",
                "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified")])
        allowed, reason = cluster.core.authorizer.authorize(self._identity, request)
        if allowed and attrs:
            info = RequestInfo(request.verb, request.resource, request.api_group, request.subresource,
                               request.namespace or None, request.name or None)
            if cluster.faults.forbids(info):
                allowed, reason = False, ""
        # A plain RBAC denial carries no reason, so kubectl prints a bare "no".
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        self._send_json(201, {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "spec": spec, "status": status})

    def _who_am_i(self) -> None:
        """``kubectl auth whoami``: the identity the request acted as."""
        info: dict[str, Any] = {"username": self._identity.name, "groups": list(self._identity.groups)}
        if self._identity.uid:
            info["uid"] = self._identity.uid
        if self._identity.extra:
            info["extra"] = {k: list(v) for k, v in self._identity.extra}
        self._send_json(201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "status": {"userInfo": info}})

    def _rules_review(self, cluster: TestCluster, review: Any) -> None:
        """``kubectl auth can-i --list``: the rules RBAC grants the requester in a namespace."""
        spec = (review or {}).get("spec") or {}
        namespace = spec.get("namespace") or ""
        if not namespace:
            raise errors.bad_request("no namespace on request")
        status = cluster.core.authorizer.rules_review(self._identity, namespace)
        self._send_json(201, {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "spec": spec, "status": status})

    def _non_resource(self, cluster: TestCluster, parts: list[str], accept: str) -> bool:
        """Discovery, version, health and OpenAPI endpoints. Returns False for resource paths."""
        core = cluster.core
        registry = core.registry
        n = len(parts)
        if parts in (["version"], ["version", ""]):
            self._send(200, discovery.version_json())
        elif parts and parts[0] in ("healthz", "livez", "readyz"):
            self._send(200, b"ok", content_type="text/plain")
        elif parts == ["api"]:
            agg = discovery.wants_aggregated(accept)
            if agg:
                ctype = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                self._send(200, discovery.aggregated(registry, True, agg), content_type=ctype)
            else:
                self._send(200, discovery.api_versions(f"127.0.0.1:{cluster.port}"))
        elif parts == ["apis"]:
            agg = discovery.wants_aggregated(accept)
            if agg:
                ctype = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                self._send(200, discovery.aggregated(registry, False, agg), content_type=ctype)
            else:
                self._send(200, discovery.api_group_list(registry))
        elif parts == ["api", "v1"]:
            self._send(200, discovery.api_resource_list(registry, "", "v1") or b"{}")
        elif n == 2 and parts[0] == "apis":
            data = discovery.api_group(registry, parts[1])
            if data is None:
                raise errors.page_not_found()
            self._send(200, data)
        elif n == 3 and parts[0] == "apis":
            data = discovery.api_resource_list(registry, parts[1], parts[2])
            if data is None:
                raise errors.page_not_found()
            self._send(200, data)
        elif parts[:2] == ["openapi", "v3"]:
            self._openapi_v3(registry, parts[2:])
        elif parts[:2] == ["openapi", "v2"]:
            # Not served: kubectl only needs v3 (see openapi.py).
            raise errors.page_not_found()
        else:
            return False
        return True

    def _openapi_v3(self, registry, rest: list[str]) -> None:
        if not rest:
            self._send(200, openapi.index_document(registry))
            return
        if rest[0] == "api" and rest[1:] == ["v1"]:
            group, version = "", "v1"
        elif rest[0] == "apis" and len(rest) == 3:
            group, version = rest[1], rest[2]
        else:
            raise errors.page_not_found()
        built = openapi.gv_document(registry, group, version)
        if built is None:
            raise errors.page_not_found()
        data, digest = built
        etag = f'"{digest}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("Etag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._headers_sent = True
            self._record.status = 304
            return
        # Documents are addressed by content hash, so clients may cache them for good.
        self._send(200, data, headers={"Etag": etag, "Cache-Control": "public, immutable"})

    def _resolve(self, cluster: TestCluster, parts: list[str]) -> Route | None:
        registry = cluster.core.registry
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if rest[:1] == ["watch"]:
            rest = rest[1:]
            self._legacy_watch = True
        else:
            self._legacy_watch = False
        if not rest:
            return None
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and group == "" and rest[2] not in ("status", "finalize") or rest[0] == "namespaces" and group != "" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        rt = registry.for_gv(group, version, rest[0])
        if rt is None:
            return None
        if ns is not None and not rt.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3 or (sub and sub not in rt.subresources):
            return None
        return Route(group, version, rt, ns, name, sub)

    def _verb(self, method: str, route: Route, query: dict[str, str]) -> str:
        watch = self._legacy_watch or query.get("watch") in ("true", "1")
        if route.name is None:
            if method == "GET":
                return "watch" if watch else "list"
            if method == "POST" and (not route.rt.namespaced or route.namespace is not None):
                return "create"
            if method == "DELETE":
                if route.rt.namespaced and route.namespace is None:
                    raise errors.method_not_allowed()
                return "deletecollection"
            raise errors.method_not_allowed()
        return {"GET": "watch" if watch else "get", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method) or self._not_allowed()

    def _not_allowed(self) -> str:
        raise errors.method_not_allowed()

    def _faults(self, cluster: TestCluster, route: Route, verb: str) -> None:
        info = RequestInfo(verb, route.rt.plural, route.group, route.subresource, route.namespace, route.name)
        for rule in cluster.faults.take(info):
            if rule.action == "latency":
                time.sleep(rule.seconds)
            elif rule.action == "hook":
                rule.fn(cluster)
            elif rule.action == "drop":
                raise DropConnection()
            elif rule.action == "forbid":
                raise errors.forbidden(verb, route.rt.plural, route.group, route.name, route.namespace,
                                       user=self._identity.name, subresource=route.subresource)
            elif rule.action == "conflict":
                name = route.name or ""
                if not name:
                    try:
                        name = (json.loads(self._record.body or "{}").get("metadata") or {}).get("name", "")
                    except (ValueError, AttributeError):
                        name = ""
                raise errors.conflict(route.rt.plural, route.group, name)
            elif rule.action == "status":
                reason = REASONS.get(rule.status, "Unknown")
                message = rule.message
                if rule.status == 500:
                    message = f"Internal error occurred: {message}"
                raise ApiError(rule.status, reason, message)

    def _decode(self, raw: bytes, content_type: str) -> Any:
        if content_type == PROTOBUF:
            try:
                return protobuf.decode(raw)
            except (protobuf.ProtobufError, KeyError, IndexError, UnicodeDecodeError) as e:
                raise errors.unsupported_media_type(content_type, ["application/json", "application/yaml"]) from e
        if not raw:
            raise errors.bad_request("the server rejected our request due to an error in our request: empty body")
        try:
            if content_type == APPLY_PATCH:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            if content_type in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
                raise errors.bad_request(f"error decoding patch: {e}") from e
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from e

    # -- reads ---------------------------------------------------------------------

    def _table_version(self, accept: str) -> str | None:
        for part in accept.split(","):
            params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
            if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
                return f"meta.k8s.io/{params.get('v', 'v1')}"
        return None

    def _send_object(self, rt: ResourceType, version: str, objs: list[dict], accept: str, query: dict[str, str],
                     single: bool) -> None:
        table_version = self._table_version(accept)
        if table_version:
            rv = objs[0]["metadata"].get("resourceVersion") if single else None
            self._send_json(200, tables.table(rt, version, objs, rv, query.get("includeObject", "Metadata"),
                                              table_version))
        else:
            self._send_json(200, objs[0])

    def _send_list(self, rt: ResourceType, version: str, items: list[dict], rv: int, accept: str,
                   query: dict[str, str]) -> None:
        table_version = self._table_version(accept)
        if table_version:
            return self._send_json(200, tables.table(rt, version, items, str(rv), query.get("includeObject", "Metadata"),
                                                     table_version))
        self._send_json(200, {
            "kind": rt.list_kind, "apiVersion": rt.api_version(version),
            "metadata": {"resourceVersion": str(rv)}, "items": items,
        })

    # -- watch ---------------------------------------------------------------------

    def _client_gone(self) -> bool:
        """Has the client closed the connection? (A watcher that went away, e.g. kubectl exited.)"""
        conn = self.connection
        try:
            if not conn.pending() and not select.select([conn], [], [], 0)[0]:
                return False
            # Readable: a watcher sends nothing more, so this is its close_notify or EOF.
            conn.setblocking(False)
            try:
                return conn.recv(1) == b""
            except ssl.SSLWantReadError:
                return False
            finally:
                conn.setblocking(True)
        except (OSError, ValueError):
            return True

    def _watch(self, cluster: TestCluster, route: Route, query: dict[str, str], accept: str) -> None:
        core = cluster.core
        store = core.store
        rt, version = route.rt, route.version
        ns = route.namespace if rt.namespaced else None
        match_labels = parse_label_selector(query.get("labelSelector"))
        field_sel = query.get("fieldSelector")
        if route.name:  # legacy /watch/.../NAME
            field_sel = ",".join(filter(None, [field_sel, f"metadata.name={route.name}"]))
        match_fields = parse_field_selector(field_sel, rt.kind)
        table_version = self._table_version(accept)
        include = query.get("includeObject", "Metadata")
        try:
            timeout = float(query.get("timeoutSeconds") or 1800)
        except ValueError:
            timeout = 1800
        deadline = time.monotonic() + timeout

        def matches(obj: dict | None) -> bool:
            if obj is None:
                return False
            meta = obj["metadata"]
            if ns is not None and meta.get("namespace") != ns:
                return False
            return match_labels(meta.get("labels") or {}) and match_fields(obj)

        def encode(etype: str, obj: dict) -> bytes:
            view = core.view(rt, obj, version)
            if table_version:
                view = tables.table(rt, version, [view], view["metadata"].get("resourceVersion"), include,
                                    table_version)
            return json.dumps({"type": etype, "object": view}, separators=(",", ":")).encode() + b"\n"

        rv_param = query.get("resourceVersion", "")
        initial: list[bytes] = []
        with store.lock:
            if rv_param in ("", "0") or query.get("sendInitialEvents") == "true":
                last = store.resource_version
                for obj in store.list(rt.key, ns):
                    if matches(obj):
                        initial.append(encode("ADDED", obj))
                if query.get("sendInitialEvents") == "true":
                    initial.append(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": rt.kind, "apiVersion": rt.api_version(version),
                        "metadata": {"resourceVersion": str(last),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}}}).encode() + b"\n")
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    raise errors.bad_request(f"invalid resource version: {rv_param}") from None
                if store.events_after(last, rt.key) is None:
                    raise errors.gone(f"too old resource version: {last} ({store.resource_version})")

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()  # the client's watch starts with the headers, events or not
        self._headers_sent = True
        self._record.status = 200

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for data in initial:
            write(data)
        while not store.closed and time.monotonic() < deadline and not self._client_gone():
            with store.lock:
                events = store.events_after(last, rt.key)
                if events is not None and not events and not store.closed:
                    store.changed.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                    events = store.events_after(last, rt.key)
            if events is None:
                write(json.dumps({"type": "ERROR", "object": errors.gone(
                    f"too old resource version: {last}").status()}).encode() + b"\n")
                break
            for e in events:
                last = e.rv
                now_match = e.type != "DELETED" and matches(e.obj)
                was_match = matches(e.old)
                if e.type == "DELETED":
                    if was_match:
                        write(encode("DELETED", e.obj))
                elif now_match and was_match:
                    write(encode("MODIFIED", e.obj))
                elif now_match:
                    write(encode("ADDED", e.obj))
                elif was_match:
                    write(encode("DELETED", e.obj))
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
