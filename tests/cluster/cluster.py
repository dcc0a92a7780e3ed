"""``TestCluster``: a local Kubernetes API server for tests, driven by real kubectl.

    with TestCluster(native_sidecars=False, ready_after=0.0) as cluster:
        cluster.write_kubeconfig(tmp_path / "kubeconfig")
        cluster.load(MANIFESTS)
        ...  # run kubectl / the plugin against it
        assert cluster.get("deployments", "my-app", "web")["status"]["readyReplicas"] == 2
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from . import errors
from .auth import Users
from .core import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, Core
from .errors import ApiError
from .faults import Faults, Rule
from .handler import ApiHandler, RequestRecord
from .openapi import precompute
from .registry import ResourceType

PATCH_TYPES = {"merge": MERGE_PATCH, "json": JSON_PATCH, "strategic": STRATEGIC_PATCH, "apply": APPLY_PATCH}


TLS_CERT = Path(__file__).resolve().parent.parent / "data" / "cluster" / "tls.crt"
TLS_KEY = TLS_CERT.with_name("tls.key")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # kubectl sends credentials (bearer tokens, impersonation) only over TLS, so the server
    # speaks HTTPS with a self-signed certificate for 127.0.0.1 (tests/data/cluster/SOURCES.md).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_CERT, TLS_KEY)
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, cluster: TestCluster) -> None:
        self.cluster = cluster
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ApiHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = self.socket.accept()
        return _tls_context().wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-handshake or mid-request is not the server's error

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


REVIEW_PATHS = ("/apis/authorization.k8s.io/", "/apis/authentication.k8s.io/")


class RequestLog(list):
    """``cluster.requests``: every request received, oldest first (a list with helpers)."""

    def matching(self, method: str | None = None, path: str | None = None, verb: str | None = None,
                 resource: str | None = None) -> list[RequestRecord]:
        return [r for r in list(self)
                if (method is None or r.method == method)
                and (path is None or path in r.path)
                and (verb is None or r.verb == verb)
                and (resource is None or r.resource == resource)]

    def writes(self) -> list[RequestRecord]:
        """Requests that change state: access reviews (POST of a SelfSubject*Review, which
        stores nothing) are not writes."""
        return [r for r in list(self) if r.method in ("POST", "PUT", "PATCH", "DELETE")
                and not r.path.startswith(REVIEW_PATHS)]


class TestCluster:
    """A fake but faithful Kubernetes API server (see the package docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        native_sidecars: bool = False,
        ready_after: float = 0.0,
        istio_installed: bool = True,
        gateway_api: bool = False,
        *,
        istio_revisions: Iterable[str] = ("default",),
        proxy_ready: bool = True,
        nodes: int = 1,
        user: str = "test",
        users: Iterable[str] = (),
        seed: int = 0,
    ) -> None:
        self.core = Core(
            native_sidecars=native_sidecars, ready_after=ready_after, istio_installed=istio_installed,
            gateway_api=gateway_api, istio_revisions=tuple(istio_revisions), proxy_ready=proxy_ready,
            nodes=nodes, seed=seed,
        )
        self.faults = Faults()
        self.requests = RequestLog()
        self.handler_errors: list[str] = []
        self.user = user
        # The admin is in system:masters (as kind's and kubeadm's admin.conf users are), so it
        # passes authorization whatever the RBAC objects say; other users get only what they are bound.
        self.users = Users()
        self.users.add(user, ("system:masters",))
        for name in users:
            self.add_user(name)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        precompute(self.core.registry)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TestCluster:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                name=f"test-apiserver-{self.port}", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        self.core.store.close()
        self.core.controllers.stop()
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=2)

    def __enter__(self) -> TestCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the test cluster is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_data(self) -> bytes:
        """The server's (self-signed) certificate, the CA a client should trust."""
        return TLS_CERT.read_bytes()

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context trusting this server (for tests that speak HTTP directly)."""
        return ssl.create_default_context(cadata=self.ca_data.decode())

    def add_user(self, name: str, groups: Iterable[str] = (), *, namespace: str | None = None,
                 token: str | None = None) -> str:
        """Register a user (bearer token ``NAME-token`` unless given) and return the token.

        The user holds nothing but what RBAC grants (``system:authenticated``: discovery and
        access reviews); ``write_kubeconfig`` adds a context of the same name (``--context NAME``),
        whose namespace is ``namespace`` when given."""
        if name == self.user:
            raise ValueError(f"{name!r} is the cluster admin's name")
        self.users.add(name, tuple(groups), token=token, namespace=namespace)
        return self.users.token(name)

    def token(self, user: str) -> str:
        return self.users.token(user)

    def write_kubeconfig(self, path: str | Path, context: str = "test", namespace: str | None = None) -> Path:
        """A kubeconfig whose current context (``context``) is the cluster admin, with one more
        context per user added by :meth:`add_user` (named after the user)."""
        names = [self.user] + [u for u in self.users.names() if u != self.user]
        users, contexts = [], []
        for name in names:
            entry = context if name == self.user else name
            ctx: dict[str, Any] = {"cluster": context, "user": entry}
            ns = namespace if name == self.user else (self.users.namespaces.get(name) or namespace)
            if ns:
                ctx["namespace"] = ns
            users.append({"name": entry, "user": {"token": self.users.token(name)}})
            contexts.append({"name": entry, "context": ctx})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(self.ca_data).decode()}}],
            "users": users,
            "contexts": contexts,
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ------------------------------------------------------------------ switches

    @property
    def native_sidecars(self) -> bool:
        return self.core.native_sidecars

    @native_sidecars.setter
    def native_sidecars(self, value: bool) -> None:
        self.core.native_sidecars = value

    @property
    def ready_after(self) -> float:
        return self.core.ready_after

    @ready_after.setter
    def ready_after(self, value: float) -> None:
        self.core.ready_after = value

    @property
    def proxy_ready(self) -> bool:
        return self.core.proxy_ready

    def set_proxy_ready(self, ready: bool) -> None:
        """Make every ``istio-proxy`` container (existing and future) ready or never ready."""
        self.core.set_proxy_ready(ready)

    # faults -------------------------------------------------------------------------

    def forbid(self, verb: str | Iterable[str] | None, resource: str | None, namespace: str | None = None,
               *, count: int | None = None) -> Rule:
        return self.faults.forbid(verb, resource, namespace, count=count)

    def fail(self, status: int = 500, *, verb: str | Iterable[str] | None = None, resource: str | None = None,
             namespace: str | None = None, count: int | None = 1, message: str | None = None) -> Rule:
        return self.faults.fail(status, verb=verb, resource=resource, namespace=namespace, count=count,
                                message=message)

    def add_latency(self, seconds: float, *, verb: str | Iterable[str] | None = None, resource: str | None = None,
                    namespace: str | None = None, count: int | None = None) -> Rule:
        return self.faults.latency(seconds, verb=verb, resource=resource, namespace=namespace, count=count)

    def drop_connections(self, count: int | None = 1, *, verb: str | Iterable[str] | None = None,
                         resource: str | None = None, namespace: str | None = None) -> Rule:
        return self.faults.drop_connection(verb=verb, resource=resource, namespace=namespace, count=count)

    def conflict_next_write(self, resource: str | None, *, namespace: str | None = None, count: int = 1) -> Rule:
        return self.faults.conflict(resource, namespace=namespace, count=count)

    def on_next_write(self, resource: str | None, fn: Callable[[TestCluster], None], *,
                      namespace: str | None = None) -> Rule:
        return self.faults.on_next_write(resource, fn, namespace=namespace)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ direct access

    def resource_type(self, kind_or_resource: str) -> ResourceType:
        return self.core.registry.resolve(kind_or_resource)

    def _names(self, rt: ResourceType, namespace: str | None, name: str | None) -> tuple[str, str]:
        if name is None:  # cluster-scoped shorthand: get("namespace", "my-app")
            if rt.namespaced:
                raise TypeError(f"{rt.kind} is namespaced: pass (kind, namespace, name)")
            return "", namespace or ""
        return (namespace or "default") if rt.namespaced else "", name

    def get(self, kind_or_resource: str, namespace: str | None = None, name: str | None = None,
            *, version: str | None = None) -> dict[str, Any] | None:
        """The object (a copy), or None. Cluster-scoped: ``get("namespaces", None, "x")`` or
        ``get("namespace", "x")``."""
        rt = self.resource_type(kind_or_resource)
        ns, nm = self._names(rt, namespace, name)
        obj = self.core.store.get(rt.key, ns, nm)
        return copy.deepcopy(self.core.view(rt, obj, version or rt.versions[0])) if obj else None

    def list(self, kind_or_resource: str, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
        rt = self.resource_type(kind_or_resource)
        items, _ = self.core.list(rt, version or rt.versions[0], namespace, label_selector, field_selector)
        return copy.deepcopy(items)

    def _rt_for(self, obj: dict[str, Any]) -> tuple[ResourceType, str]:
        found = self.core.registry.for_api_version(obj.get("apiVersion", ""), obj.get("kind", ""))
        if found is None:
            raise ApiError(404, "NotFound",
                           f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"')
        return found

    def create(self, obj: dict[str, Any], *, inject: bool = True, keep_status: bool = False) -> dict[str, Any]:
        rt, version = self._rt_for(obj)
        created, _ = self.core.create(rt, version, obj.get("metadata", {}).get("namespace"), obj,
                                      field_validation="Strict", keep_status=keep_status,
                                      inject_sidecar=inject)
        return copy.deepcopy(created)

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an object (unconditional unless it carries metadata.resourceVersion)."""
        rt, version = self._rt_for(obj)
        meta = obj.get("metadata") or {}
        updated, _ = self.core.update(rt, version, meta.get("namespace"), meta["name"], obj,
                                      field_validation="Strict")
        return copy.deepcopy(updated)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or replace when it exists (like ``kubectl replace --force`` without delete)."""
        rt, _ = self._rt_for(obj)
        meta = obj.get("metadata") or {}
        existing = self.core.store.get(rt.key, (meta.get("namespace") or "default") if rt.namespaced else "",
                                       meta.get("name", ""))
        return self.update(obj) if existing else self.create(obj)

    def patch(self, kind_or_resource: str, namespace: str | None, name: str, patch: Any,
              patch_type: str = "merge") -> dict[str, Any]:
        rt = self.resource_type(kind_or_resource)
        ns, nm = self._names(rt, namespace, name)
        patched, _ = self.core.patch(rt, rt.versions[0], ns, nm, PATCH_TYPES.get(patch_type, patch_type), patch,
                                     field_validation="Strict", field_manager="test")
        return copy.deepcopy(patched)

    def delete(self, kind_or_resource: str, namespace: str | None = None, name: str | None = None,
               *, propagation: str = "Background") -> None:
        rt = self.resource_type(kind_or_resource)
        ns, nm = self._names(rt, namespace, name)
        self.core.delete(rt, rt.versions[0], ns, nm, propagation=propagation)

    def load(self, objects: str | dict[str, Any] | Iterable[dict[str, Any]], *, inject: bool = True,
             create_namespaces: bool = True) -> list[dict[str, Any]]:
        """Preload objects (YAML text, a dict, or dicts) as if created through the API:
        defaults, sidecar injection (unless ``inject=False``) and controllers all run.

        Missing namespaces are created first (``create_namespaces``); objects that exist are
        replaced; pods that come with a ``status`` keep it (the server does not simulate them).
        """
        if isinstance(objects, str):
            docs = [d for d in yaml.safe_load_all(objects) if d]
        elif isinstance(objects, dict):
            docs = [objects]
        else:
            docs = [d for d in objects if d]
        flat: list[dict[str, Any]] = []
        for d in docs:
            flat.extend(d.get("items") or [] if d.get("kind", "").endswith("List") and "items" in d else [d])
        # CRDs and namespaces first, as `kubectl apply -f` users order them.
        flat.sort(key=lambda d: 0 if d.get("kind") == "CustomResourceDefinition" else 1 if d.get("kind") == "Namespace" else 2)
        out = []
        with self.core.op():
            for d in flat:
                d = copy.deepcopy(d)
                rt, version = self._rt_for(d)
                meta = d.setdefault("metadata", {})
                if rt.namespaced:
                    ns = meta.setdefault("namespace", "default")
                    if create_namespaces and not self.core.namespace_exists(ns):
                        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                existing = self.core.store.get(rt.key, meta.get("namespace", "") if rt.namespaced else "",
                                               meta.get("name", ""))
                if existing is not None:
                    meta.pop("resourceVersion", None)
                    obj, _ = self.core.update(rt, version, meta.get("namespace"), meta["name"], d,
                                              field_validation="Strict")
                    if "status" in d and "status" in rt.subresources:
                        obj, _ = self.core.update(rt, version, meta.get("namespace"), meta["name"], d,
                                                  subresource="status")
                else:
                    obj, _ = self.core.create(rt, version, meta.get("namespace"), d, field_validation="Strict",
                                              keep_status=rt.kind == "Pod" and bool(d.get("status")),
                                              inject_sidecar=inject)
                out.append(copy.deepcopy(obj))
        return out

    # ------------------------------------------------------------------ diagnostics

    @property
    def controller_errors(self) -> list[str]:
        return self.core.controllers.errors

    def assert_healthy(self) -> None:
        """Fail if a handler or controller raised (a bug in the server, not the client)."""
        problems = self.handler_errors + self.controller_errors
        if problems:
            raise AssertionError("test API server errors:\n" + "\n".join(problems))

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<TestCluster {state}>"


__all__ = ["TestCluster", "RequestRecord", "ApiError", "errors"]
