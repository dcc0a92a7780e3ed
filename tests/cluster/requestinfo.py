"""The attributes authorization sees, parsed from a request as kube-apiserver's
``RequestInfoFactory`` (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) parses them.

Independent of routing: a path the server does not serve is still authorized first (a
namespace-scoped user gets 403, not 404, for a kind they may not read), as on a real server.

    /api/v1/namespaces/my-app/pods            GET  -> list pods in my-app (watch with ?watch=true)
    /api/v1/namespaces/my-app                 GET  -> get namespaces "my-app" *in namespace my-app*
    /apis/apps/v1/namespaces/x/deployments/web/scale  PUT -> update deployments/scale "web"
    /api/v1/namespaces/x/services/web:80/proxy/metrics GET -> get services/proxy "web:80"
    /api/v1/namespaces/x/pods                 DELETE -> deletecollection
    /version, /apis, /openapi/v3              non-resource: verb = lower-cased method
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

API_PREFIXES = ("api", "apis")
GROUPLESS_PREFIXES = ("api",)
# Verbs that may come as the first path segment (legacy /watch/..., /proxy/...).
SPECIAL_VERBS = ("proxy", "watch")
SPECIAL_VERBS_NO_SUBRESOURCES = ("proxy",)
# /namespaces/NAME/status and /finalize are subresources of the namespace, not resources in it.
NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


@dataclass(frozen=True)
class RequestAttributes:
    """What an authorizer decides on (authorizer.Attributes without the user)."""

    verb: str
    path: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def parse(method: str, path: str, query: str | dict[str, str] = "") -> RequestAttributes:
    """The request's attributes (Kubernetes' NewRequestInfo)."""
    if isinstance(query, str):
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    else:
        params = query
    verb = method.lower()
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return RequestAttributes(verb=verb, path=path, resource_request=False)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in GROUPLESS_PREFIXES:
        if len(parts) < 3:  # /apis/GROUP/VERSION alone is discovery
            return RequestAttributes(verb=verb, path=path, resource_request=False)
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]

    if parts[0] in SPECIAL_VERBS:
        if len(parts) < 2:
            # kube-apiserver answers this with an error; treat it as the bare verb.
            return RequestAttributes(verb=parts[0], path=path, resource_request=True, api_group=group,
                                     api_version=version)
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb not in SPECIAL_VERBS_NO_SUBRESOURCES else ""

    if not name and verb == "get":
        verb = "watch" if params.get("watch") in ("true", "1") else "list"
        # A list or watch of one object by field selector is authorized against that name.
        selector = params.get("fieldSelector") or ""
        terms = [t.strip() for t in selector.split(",") if t.strip()]
        for term in terms:
            key, sep, value = term.partition("=")  # "metadata.name=x" or "metadata.name==x"; not "!="
            value = value.removeprefix("=")
            if sep and key == "metadata.name" and _valid_path_segment(value):
                name = value
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(verb=verb, path=path, resource_request=True, api_group=group, api_version=version,
                             namespace=namespace, resource=resource, subresource=subresource, name=name)
