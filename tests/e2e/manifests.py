"""Small manifests the end-to-end tests load, as YAML text: a namespace, a workload, a service,
and `documents` to join them with `---`. Each builder says only what differs from the usual
test object (one replica, selected by `app: NAME`, one container NAME with image NAME:1)."""

from __future__ import annotations

from typing import Any

import yaml


def _text(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def documents(*docs: str) -> str:
    """YAML documents (text) as one stream, separated by `---`."""
    return "\n---\n".join(doc.strip("\n") for doc in docs) + "\n"


def namespace(name: str, *, injection: str | None = "enabled") -> str:
    """A Namespace labelled `istio-injection: INJECTION`; with `injection=None`, no labels at all."""
    metadata: dict[str, Any] = {"name": name}
    if injection is not None:
        metadata["labels"] = {"istio-injection": injection}
    return _text({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})


def workload(name: str, namespace: str, *, kind: str = "Deployment", replicas: int = 1,
             labels: dict[str, str] | None = None, pod_labels: dict[str, str] | None = None,
             container: str | None = None, image: str | None = None) -> str:
    """A Deployment or StatefulSet (whose serviceName is NAME): `labels` select its pods (default
    `app: NAME`); `pod_labels` are all the labels of its pod template (default: `labels`)."""
    labels = labels or {"app": name}
    spec: dict[str, Any] = {"replicas": replicas}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    spec["selector"] = {"matchLabels": dict(labels)}
    spec["template"] = {"metadata": {"labels": dict(pod_labels or labels)},
                        "spec": {"containers": [{"name": container or name, "image": image or f"{name}:1"}]}}
    return _text({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                  "spec": spec})


def service(name: str, namespace: str, *, port: int = 80, selector: dict[str, str] | None = None) -> str:
    """A Service with one port named http, selecting `app: NAME` unless told otherwise."""
    return _text({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                  "spec": {"selector": dict(selector or {"app": name}), "ports": [{"name": "http", "port": port}]}})
