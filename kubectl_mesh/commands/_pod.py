"""The pod `describe` and `routes` look at: POD, pod/POD, a workload (deploy/NAME, sts/NAME,
ds/NAME: one of its pods) or -l SELECTOR (one of the pods it selects), as istioctl takes them.

A workload or selector stands for its pods, which share their proxy configuration: one
is picked (ready with istio-proxy first, then ready, then any running one) and named,
so the output says which pod it is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubectl_mesh import errors, mesh, shapes, validate

POD_KINDS = ("pod", "pods", "po")
_KEY = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_REQUIREMENT = re.compile(
    rf"^\s*(?:!\s*{_KEY}|{_KEY}\s*(?:(?:==|!=|=)\s*{_VALUE}|\s(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))?)\s*$"
)


@dataclass
class PodTarget:
    name: str
    namespace: str
    source: str = ""  # "deployment/web" or "-l app=web"; "" when the pod was named
    workload: dict | None = None  # shapes.workload_ref of a workload given
    candidates: int = 1
    selector: str = ""  # the -l given
    ready: bool = True  # False when no pod of the workload or selector was ready

    @property
    def note(self) -> str:
        if not self.source:
            return ""
        if self.selector:
            # The pods a selector picks may belong to several workloads: no claim about them.
            note = (f"pod {self.name}, one of the {self.candidates} pods {self.source} selects" if self.candidates > 1
                    else f"pod {self.name}, the one pod {self.source} selects")
        else:
            note = (f"pod {self.name}, one of the {self.candidates} pods of {self.source} "
                    "(they share their proxy configuration)" if self.candidates > 1
                    else f"pod {self.name}, the one pod of {self.source}")
        if not self.ready:
            note += "; it is not ready" if self.candidates == 1 else "; none of them is ready"
        return note

    def as_dict(self) -> dict:
        return {"name": self.name, "namespace": self.namespace}

    def document(self) -> dict:
        """What the document says about the pod looked at: `.pod`, and `.workload` or
        `.selector` when one stood for it."""
        data = {"pod": self.as_dict()}
        if self.workload:
            data["workload"] = self.workload
        if self.selector:
            data["selector"] = self.selector
        return data


def label_selector(value: str) -> str:
    """A label selector as kubectl takes it (`app=web,version!=v1`, `tier in (a,b)`); exit 2 otherwise."""
    parts = re.split(r",(?![^()]*\))", value or "")
    if not value or not value.strip() or not all(_REQUIREMENT.match(p) for p in parts):
        raise errors.UsageError(f'invalid label selector "{value}": e.g. -l app=web or -l "version in (v1,v2)"')
    return value


def parse(value: str | None, selector: str | None) -> tuple[str, str]:
    """("Pod", NAME), (Kind, NAME) for a workload, or ("selector", SELECTOR)."""
    if value and selector:
        raise errors.UsageError("give a pod (or deploy/NAME) or -l SELECTOR, not both")
    if selector is not None:
        return "selector", label_selector(selector)
    if not value:
        raise errors.UsageError("missing POD: give a pod, a workload (deploy/NAME) or -l SELECTOR")
    kind, _, name = value.rpartition("/")
    if not kind or kind.lower() in POD_KINDS:
        return "Pod", validate.resource_name(name, what="pod name")
    return validate.workload_ref(value)


def pick(pods: list[dict]) -> dict | None:
    """The pod to look at: ready with istio-proxy, else ready, else any that is not finished."""
    live = [p for p in pods if not mesh.pod_terminating(p)
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    for wanted in (lambda p: mesh.pod_ready(p) and mesh.has_sidecar(p), mesh.pod_ready, lambda p: True):
        chosen = sorted((p for p in live if wanted(p)), key=mesh.name_of)
        if chosen:
            return chosen[0]
    return None


def resolve(runner, namespace: str, value: str | None, selector: str | None) -> PodTarget:
    """The pod for POD / deploy/NAME / -l SELECTOR in `namespace`: no read for a pod named,
    two small reads for a workload (it, then its pods), one for a selector."""
    kind, name = parse(value, selector)
    if kind == "Pod":
        return PodTarget(name, namespace)
    workload = None
    if kind == "selector":
        source, wanted = f"-l {name}", name
    else:
        from kubectl_mesh.snapshot import CORE_RESOURCES

        try:
            obj = runner.kubectl_json("get", CORE_RESOURCES[kind], name, "-n", namespace)
        except errors.NotFound:
            raise errors.NotFound(f'{kind.lower()} "{name}" not found in namespace "{namespace}"') from None
        workload = shapes.workload_ref(kind, namespace, name)
        source = workload["ref"]
        wanted = selector_text(((obj.get("spec") or {}).get("selector")) or {})
        if not wanted:
            raise errors.NotFound(f"{source} has no pod selector")
    pods = runner.kubectl_json("get", "pods", "-n", namespace, "-l", wanted).get("items") or []
    chosen = pick(pods)
    if chosen is None:
        raise errors.NotFound(f"no running pod of {source} in namespace {namespace}")
    return PodTarget(mesh.name_of(chosen), namespace, source, workload, len(pods),
                     selector=name if kind == "selector" else "", ready=mesh.pod_ready(chosen))


def selector_text(selector: dict) -> str:
    """A LabelSelector (matchLabels and matchExpressions) as kubectl's -l takes it."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def complete_targets(ctx, param, incomplete):
    """Pods, and deploy/NAME, sts/NAME, ds/NAME, for the POD argument."""
    from kubectl_mesh.cluster_names import complete_pods, complete_workloads

    if "/" in incomplete:
        return complete_workloads(ctx, param, incomplete)
    return complete_pods(ctx, param, incomplete) + complete_workloads(ctx, param, incomplete)
