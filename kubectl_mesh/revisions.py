"""Which Istio control-plane revisions and revision tags a cluster runs.

A revision is an istiod Deployment's `istio.io/rev` label ("default" when it
has none); a revision tag is a MutatingWebhookConfiguration named
`istio-revision-tag-TAG` (labelled `istio.io/tag=TAG`), which injects with the
revision it points at. `enable --revision REV` checks that REV is one of
them before labelling, rather than restarting every workload into pods that
no injector will touch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_mesh import errors

WEBHOOKS = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
TAG_PREFIX = "istio-revision-tag-"


@dataclass
class Known:
    revisions: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    # Why the answer is incomplete (e.g. istiod's namespace is not readable), if it is.
    unknown: str | None = None

    def has(self, name: str) -> bool:
        return name in self.revisions or name in self.tags

    def listing(self) -> str:
        parts = []
        if self.revisions:
            parts.append("revisions " + ", ".join(sorted(self.revisions)))
        if self.tags:
            parts.append("tags " + ", ".join(sorted(self.tags)))
        return "; ".join(parts) or "none"


def _istiods(runner, root_namespace: str) -> list[dict]:
    try:
        return runner.kubectl_json("get", "deployments.apps", "-A", "-l", "app=istiod").get("items") or []
    except errors.Forbidden:
        return runner.kubectl_json("get", "deployments.apps", "-n", root_namespace, "-l", "app=istiod"
                                   ).get("items") or []


def read(runner, root_namespace: str = "istio-system") -> Known:
    known = Known()
    try:
        for deployment in _istiods(runner, root_namespace):
            labels = (deployment.get("metadata") or {}).get("labels") or {}
            known.revisions.add(str(labels.get("istio.io/rev") or "default"))
    except errors.Forbidden as exc:
        known.unknown = f"istiod's Deployments are not readable ({exc.message})"
    try:
        listed = runner.kubectl_json("get", WEBHOOKS, "-l", "istio.io/tag")
    except (errors.Forbidden, errors.NotFound):
        listed = {}
    for webhook in listed.get("items") or []:
        metadata = webhook.get("metadata") or {}
        tag = (metadata.get("labels") or {}).get("istio.io/tag")
        name = str(metadata.get("name") or "")
        if tag:
            known.tags.add(str(tag))
        elif name.startswith(TAG_PREFIX):
            known.tags.add(name[len(TAG_PREFIX):])
    return known
