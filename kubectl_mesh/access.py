"""What the user may not read or write, as data: parsed from the API server's Forbidden
messages and worded so a developer can forward it to the platform team.

kube-apiserver words every RBAC denial the same way:

    pods is forbidden: User "dev" cannot list resource "pods" in API group "" in the namespace "x"
    nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope
    namespaces "x" is forbidden: User "dev" cannot get resource "namespaces" in API group "" in the namespace "x"

so `kubectl get a,b,c` that fails for some kinds says exactly which (verb, resource,
namespace) was refused, and the rest of what it printed can still be used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORBIDDEN = re.compile(
    r'(?:Error from server \(Forbidden\): )?(?P<subject>[a-z0-9.-]+)(?: "(?P<name>[^"]*)")? is forbidden: '
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z*]+) resource "(?P<resource>[^"]+)" in API group '
    r'"(?P<group>[^"]*)" (?:in the namespace "(?P<namespace>[^"]*)"|at the cluster scope)'
)


@dataclass(frozen=True)
class Denied:
    """One permission the user lacks: `verb` on `resource` (plural.group, as kubectl names it)
    in `namespace` (None: at the cluster scope), for object `name` when it was one object."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    user: str = ""

    @property
    def permission(self) -> str:
        """`list peerauthentications.security.istio.io in istio-system`, `get namespaces/my-app`,
        `list nodes at the cluster scope`: what to ask the platform team for."""
        # A subresource (pods/portforward) is asked for as such; a name only on a resource.
        target = f"{self.resource}/{self.name}" if self.name and "/" not in self.resource else self.resource
        if self.namespace is None:
            return f"{self.verb} {target} at the cluster scope"
        if self.resource == "namespaces":
            return f"{self.verb} {target}"
        return f"{self.verb} {target} in {self.namespace}"

    def as_dict(self) -> dict:
        data = {"verb": self.verb, "resource": self.resource, "namespace": self.namespace}
        if self.name:
            data["name"] = self.name
        return data


def parse_forbidden(line: str) -> Denied | None:
    """The permission a Forbidden line names, or None when the line is not an RBAC denial."""
    match = _FORBIDDEN.search(line)
    if match is None:
        return None
    resource, _, sub = match["resource"].partition("/")
    group = match["group"]
    qualified = f"{resource}.{group}" if group else resource
    if sub:
        qualified = f"{qualified}/{sub}"
    return Denied(match["verb"], qualified, match["namespace"], match["name"] or None, match["user"])


def forbidden_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if "(Forbidden)" in line or " is forbidden: " in line]


def skipped(check_id: str, category: str, subject: str, message: str, denied: Denied):
    """A check that could not run because its input was not readable: result `skip`, the
    missing permission in the message's words and as data (`verb`, `resource`, `namespace`)."""
    from kubectl_mesh.report import SKIP, Check

    return Check(check_id, category, subject, SKIP, message,
                 f"ask your platform team for: {denied.permission}", data=denied.as_dict())


# What a check loses when a kind cannot be read, in the words the skip line uses.
_EFFECT = {
    "Node": "locality subsets were matched on pod labels only",
    "PeerAuthentication": "mTLS checks that depend on these policies were skipped",
    "Pod": "checks on pods and sidecars were skipped",
    "Namespace": "checks on the namespace's injection labels were skipped",
}


def unread_checks(snapshot, category: str = "access") -> list:
    """One `skip` check per kind the read was refused, naming the permission it needs."""
    out = []
    for (kind, _), denied in sorted(snapshot.denied.items(), key=lambda item: item[1].permission):
        plural = denied.resource.split(".", 1)[0]
        where = f" in {denied.namespace}" if denied.namespace and kind != "Namespace" else ""
        effect = _EFFECT.get(kind, f"checks that need {plural} were skipped")
        out.append(skipped("readable", category, f"{plural}{where}",
                           f"{plural}{where} not readable: {effect} (needs {denied.permission})", denied))
    return out
