"""Who is asking: bearer-token authentication and impersonation, as kube-apiserver does them.

- ``Authorization: Bearer TOKEN`` names a user registered with :meth:`Users.add` (static
  tokens, like ``--token-auth-file``); an unknown token, or credentials of another kind, get
  401 ``Unauthorized``. No credentials at all: ``system:anonymous`` in
  ``system:unauthenticated`` (anonymous auth is on by default), which RBAC then refuses
  almost everything.
- Every authenticated user is in ``system:authenticated``; a service account
  (``system:serviceaccount:NS:NAME``) also in ``system:serviceaccounts`` and
  ``system:serviceaccounts:NS``.
- ``Impersonate-User`` / ``Impersonate-Group`` / ``Impersonate-Uid`` / ``Impersonate-Extra-*``
  (``kubectl --as``/``--as-group``) switch identity when the requester may ``impersonate``
  ``users``, ``groups``, ``serviceaccounts``, ``uids`` and ``userextras/KEY``; otherwise 403
  (``users "bob" is forbidden: User "dev" cannot impersonate resource "users" in API group ""
  at the cluster scope``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from . import errors
from .rbac import ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNT_PREFIX, UNAUTHENTICATED, Identity
from .requestinfo import RequestAttributes

ANONYMOUS_IDENTITY = Identity(ANONYMOUS, (UNAUTHENTICATED,))


def _groups_for(name: str, groups: tuple[str, ...]) -> tuple[str, ...]:
    out = list(groups)
    if name.startswith(SERVICE_ACCOUNT_PREFIX):
        ns = name[len(SERVICE_ACCOUNT_PREFIX):].split(":", 1)[0]
        out += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    if AUTHENTICATED not in out:
        out.append(AUTHENTICATED)
    return tuple(dict.fromkeys(out))


class Users:
    """Static bearer tokens: token -> identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Identity] = {}
        self._tokens: dict[str, str] = {}  # user name -> token
        self.namespaces: dict[str, str | None] = {}  # user name -> default namespace of its context

    def add(self, name: str, groups: tuple[str, ...] = (), *, token: str | None = None,
            namespace: str | None = None) -> Identity:
        identity = Identity(name, _groups_for(name, tuple(groups)))
        token = token or f"{name}-token"
        with self._lock:
            old = self._tokens.get(name)
            if old is not None:
                self._by_token.pop(old, None)
            self._by_token[token] = identity
            self._tokens[name] = token
            self.namespaces[name] = namespace
        return identity

    def token(self, name: str) -> str:
        return self._tokens[name]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def authenticate(self, authorization: str | None) -> Identity:
        """The identity of an ``Authorization`` header (401 for credentials nobody knows)."""
        if not authorization:
            return ANONYMOUS_IDENTITY
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized()
        with self._lock:
            identity = self._by_token.get(token.strip())
        if identity is None:
            raise errors.unauthorized()
        return identity


def _attrs(verb: str, resource: str, name: str, *, group: str = "", namespace: str = "",
           subresource: str = "") -> RequestAttributes:
    return RequestAttributes(verb=verb, path="", resource_request=True, api_group=group, api_version="v1",
                             namespace=namespace, resource=resource, subresource=subresource, name=name)


def impersonate(requester: Identity, headers: Mapping[str, str] | list[tuple[str, str]],
                allowed: Callable[[Identity, RequestAttributes], bool]) -> Identity:
    """The identity a request acts as after its ``Impersonate-*`` headers (the requester's own
    when there are none). ``allowed(identity, attrs)`` asks the authorizer."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    user = next((v for k, v in items if k.lower() == "impersonate-user"), None)
    groups = [v for k, v in items if k.lower() == "impersonate-group"]
    uid = next((v for k, v in items if k.lower() == "impersonate-uid"), None)
    extras: dict[str, list[str]] = {}
    for k, v in items:
        if k.lower().startswith("impersonate-extra-"):
            extras.setdefault(k[len("impersonate-extra-"):].lower(), []).append(v)
    if user is None:
        if groups or uid or extras:
            raise errors.bad_request(
                f"requested {_describe(groups, uid, extras)} without impersonating a user")
        return requester

    checks: list[RequestAttributes] = []
    if user.startswith(SERVICE_ACCOUNT_PREFIX) and user.count(":") == 3:
        _, _, ns, name = user.split(":")
        checks.append(_attrs("impersonate", "serviceaccounts", name, namespace=ns))
    else:
        checks.append(_attrs("impersonate", "users", user))
    checks += [_attrs("impersonate", "groups", g) for g in groups]
    if uid:
        checks.append(_attrs("impersonate", "uids", uid, group="authentication.k8s.io"))
    for key, values in extras.items():
        checks += [_attrs("impersonate", "userextras", v, group="authentication.k8s.io", subresource=key)
                   for v in values]
    for attrs in checks:
        if not allowed(requester, attrs):
            raise errors.forbidden_request(attrs, requester.name)

    if user == ANONYMOUS:
        final_groups = tuple(dict.fromkeys(groups)) or (UNAUTHENTICATED,)
    elif UNAUTHENTICATED in groups or AUTHENTICATED in groups:
        final_groups = tuple(dict.fromkeys(groups))
    else:
        final_groups = _groups_for(user, tuple(groups))
    extra = tuple(sorted((k, tuple(v)) for k, v in extras.items()))
    return Identity(user, final_groups, uid or "", extra)


def _describe(groups: list[str], uid: str | None, extras: dict[str, list[str]]) -> str:
    parts = [f"group {g!r}" for g in groups]
    if uid:
        parts.append(f"uid {uid!r}")
    parts += [f"extra {k!r}" for k in extras]
    return ", ".join(parts)
