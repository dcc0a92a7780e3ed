"""The personas of the permission matrix: who holds what, as RBAC objects on the test API
server, and the docs' Roles (docs/rbac.md) read from the document itself."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"
NS = "shop"
RBAC = "rbac.authorization.k8s.io"


def docs_roles(namespace: str = NS) -> dict[str, list[dict]]:
    """`# role: NAME` YAML blocks of docs/rbac.md, for `namespace` instead of my-app."""
    blocks = re.findall(r"```yaml\n(# role: ([\w-]+)\n.*?)```", DOCS.read_text(), flags=re.S)
    out = {}
    for text, name in blocks:
        out[name] = [d for d in yaml.safe_load_all(text.replace("my-app", namespace)) if d]
    return out


def bind(user: str, role: str, *, kind: str = "ClusterRole", namespace: str = NS) -> dict:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": namespace},
            "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}]}


def istio_role(name: str, verbs: list[str], namespace: str = NS) -> dict:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": ["networking.istio.io", "security.istio.io"], "resources": ["*"], "verbs": verbs}]}


def for_user(objects: list[dict], user: str) -> list[dict]:
    """The docs' objects bound to `user` alone (their examples name dev@example.com, ops@example.com,
    or the group system:authenticated, which would give every persona of the cluster the rights)."""
    out = []
    for obj in objects:
        obj = yaml.safe_load(yaml.safe_dump(obj))
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            obj["metadata"]["name"] = f"{obj['metadata']['name']}-{user}"
            obj["subjects"] = [{"apiGroup": RBAC, "kind": "User", "name": user}]
        out.append(obj)
    return out


def personas() -> dict[str, list[dict]]:
    """persona (its user and context name) -> the RBAC objects that give it its rights."""
    docs = docs_roles()
    return {
        "edit-istio": [bind("edit-istio", "edit"), istio_role("istio-edit", ["*"]),
                       bind("edit-istio", "istio-edit", kind="Role")],
        "view-istio": [bind("view-istio", "view"), istio_role("istio-read", ["get", "list", "watch"]),
                       bind("view-istio", "istio-read", kind="Role")],
        "reader": for_user(docs["mesh-reader"], "reader"),
        "traffic": for_user(docs["mesh-reader"] + docs["mesh-traffic"], "traffic"),
        "operator": for_user(docs["mesh-reader"] + docs["mesh-operator"], "operator"),
    }
