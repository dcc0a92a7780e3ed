"""A local Kubernetes API server for tests (``TestCluster``), faithful enough that the real
kubectl binary works against it: discovery and OpenAPI v3, CRUD with Kubernetes' error
Status objects, watches, strategic/merge/JSON patches, Istio CRD validation, workload
controllers, Istio sidecar injection, bearer-token authentication, RBAC authorization and
fault switches.

Modules: ``cluster`` (public API), ``core`` (API semantics), ``store``, ``registry``,
``discovery``, ``openapi``, ``validation``, ``patch``, ``defaults``, ``controllers``,
``injection``, ``tables``, ``handler`` (HTTP), ``auth`` (tokens, impersonation),
``requestinfo`` (request attributes), ``rbac`` (authorizer), ``rbac_policy`` (bootstrap
policy, RBAC admission), ``faults``, ``fixtures`` (pytest).
"""

from .cluster import RequestLog, TestCluster
from .errors import ApiError
from .handler import RequestRecord

__all__ = ["TestCluster", "RequestLog", "RequestRecord", "ApiError"]
