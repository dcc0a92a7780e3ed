"""API errors rendered as Kubernetes ``Status`` objects.

kubectl turns a Status body into its familiar ``Error from server (Reason): message`` lines,
so every failure the server reports goes through :class:`ApiError`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API server answers with a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if details:
            body["details"] = details
        return body


def qualified(resource: str, group: str) -> str:
    """``deployments.apps`` style name used in server messages (core group: bare plural)."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        name=name, group=group or None, kind=resource,
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
        name=name, group=group or None, kind=resource,
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        name=name, group=group or None, kind=resource,
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid; message is ``The Kind "name" is invalid: field: msg`` (joined by ", ")."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    if len(parts) == 1:
        text = parts[0]
    else:
        text = "[" + ", ".join(parts) + "]"
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {text}',
        name=name, group=group or None, kind=kind, causes=causes,
    )


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def forbidden(
    verb: str, resource: str, group: str, name: str | None, namespace: str | None,
    user: str = "test", subresource: str = "",
) -> ApiError:
    res = f"{resource}/{subresource}" if subresource else resource
    subject = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return ApiError(
        403, "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{res}" '
        f'in API group "{group}" {scope}',
        name=name, group=group or None, kind=resource,
    )


def forbidden_because(resource: str, group: str, name: str | None, reason: str) -> ApiError:
    """apierrors.NewForbidden: ``<resource> "<name>" is forbidden: <reason>``."""
    subject = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {reason}", name=name, group=group or None,
                    kind=resource)


def forbidden_request(attrs: Any, user: str, reason: str = "") -> ApiError:
    """What kube-apiserver answers when authorization denies a request (responsewriters.Forbidden):
    ``pods is forbidden: User "dev" cannot list resource "pods" in API group "" in the namespace "x"``,
    ``... at the cluster scope``, or for a path ``forbidden: User "dev" cannot get path "/logs"``.
    ``attrs`` is a :class:`~tests.cluster.requestinfo.RequestAttributes`."""
    if not attrs.resource_request:
        text = f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        text = (f'User "{user}" cannot {attrs.verb} resource "{attrs.combined_resource}" '
                f'in API group "{attrs.api_group}" {scope}')
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return ApiError(403, "Forbidden", f"forbidden: {text}")
    return forbidden_because(attrs.resource, attrs.api_group, attrs.name or None, text)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def page_not_found() -> ApiError:
    # What a real API server answers for a path it does not serve at all.
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def status_success(name: str, group: str, resource: str, uid: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": details,
    }
