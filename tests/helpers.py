"""Helpers for tests: building kubectl's JSON and registering faked calls."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def kube_list(*objects: dict) -> str:
    """What `kubectl get A,B -o json` prints: a v1 List."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}})


def load_yaml(path: str | Path) -> list[dict]:
    """All documents of a YAML file under tests/data (or an absolute path)."""
    full = Path(path) if Path(path).is_absolute() else DATA / path
    return [d for d in yaml.safe_load_all(full.read_text()) if d]


def namespace(name: str, labels: dict | None = None, **extra_meta) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}, **extra_meta}}


def pod(
    name: str,
    ns: str = "my-app",
    *,
    labels: dict | None = None,
    sidecar: str | None = None,
    owner: tuple[str, str] | None = None,
    ready: bool = True,
    proxy_ready: bool = True,
    node: str = "node-1",
    annotations: dict | None = None,
) -> dict:
    """A pod as kubectl prints it; `sidecar` is None, "container" or "native";
    `owner` is (kind, name), e.g. ("ReplicaSet", "web-5d9f").
    """
    containers = [{"name": "app", "image": "app:1"}]
    init = []
    statuses = [{"name": "app", "ready": ready}]
    init_statuses = []
    if sidecar == "container":
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.32.0"})
        statuses.append({"name": "istio-proxy", "ready": proxy_ready})
    elif sidecar == "native":
        init.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.32.0", "restartPolicy": "Always"})
        init_statuses.append({"name": "istio-proxy", "ready": proxy_ready})
    metadata = {"name": name, "namespace": ns, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}]
    spec = {"containers": containers, "nodeName": node}
    if init:
        spec["initContainers"] = init
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready and (proxy_ready or not sidecar) else "False"}],
        "containerStatuses": statuses,
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def deployment(name: str, ns: str = "my-app", *, labels: dict | None = None, replicas: int = 1,
               template_annotations: dict | None = None, template_labels: dict | None = None) -> dict:
    selector = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "100", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": {**selector, **(template_labels or {})},
                             "annotations": dict(template_annotations or {})},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
        "status": {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "observedGeneration": 1},
    }


def deployment_with_pods(name: str, ns: str = "my-app", *, pods: int = 2, sidecar: str | None = None,
                         labels: dict | None = None, **pod_kwargs) -> list[dict]:
    """A Deployment, its ReplicaSet and its pods, linked by owner references."""
    deploy = deployment(name, ns, labels=labels, replicas=pods)
    template_hash = "5d9f8c7b6"
    rs_name = f"{name}-{template_hash}"
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": ns,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": True}]},
        "spec": {"selector": copy.deepcopy(deploy["spec"]["selector"])},
    }
    pod_labels = {**(labels or {"app": name}), "pod-template-hash": template_hash}
    members = [
        pod(f"{rs_name}-{i:05d}"[: len(rs_name) + 6], ns, labels=pod_labels, sidecar=sidecar,
            owner=("ReplicaSet", rs_name), **pod_kwargs)
        for i in range(pods)
    ]
    for i, member in enumerate(members):
        member["metadata"]["name"] = f"{rs_name}-p{i}"
    return [deploy, rs, *members]


def calls_made(fp) -> list[list[str]]:
    """The calls made, as argument lists without the runner's `--request-timeout=Ns`
    (its value depends on the time left of --timeout)."""
    return [[str(a) for a in call if not str(a).startswith("--request-timeout=")] for call in fp.calls]


def register_kubectl(fp, args: list[str], *, stdout: str = "", stderr: str = "", returncode: int = 0,
                     occurrences: int = 1):
    """Register one faked kubectl call with its exact argument list."""
    fp.register(["kubectl", *args], stdout=stdout, stderr=stderr, returncode=returncode, occurrences=occurrences)


# The one batched read every namespace command makes, written out literally so
# that a change to it is a visible change to the tests.
ISTIO_KINDS = ("virtualservices.networking.istio.io,destinationrules.networking.istio.io,"
               "serviceentries.networking.istio.io,gateways.networking.istio.io,sidecars.networking.istio.io,"
               "peerauthentications.security.istio.io,authorizationpolicies.security.istio.io")
# One namespace's kinds (its Namespace object is read by name, see namespace_read).
CORE_KINDS = "pods,services,deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps"


def batch_read(ns: str = "my-app", istio: bool = True) -> list[str]:
    kinds = CORE_KINDS + ("," + ISTIO_KINDS if istio else "")
    return ["get", kinds, "-n", ns, "-o", "json"]


ROOT_PA = ["get", "peerauthentications.security.istio.io", "-n", "istio-system", "-o", "json"]


def rollouts_read(ns: str = "my-app", resources: str = "deployments.apps") -> list[str]:
    """The wait's batched read of the workloads whose rollouts it waits for."""
    return ["get", resources, "-n", ns, "-o", "json"]


def register_rollouts(fp, *workloads: dict, ns: str = "my-app", resources: str = "deployments.apps",
                      occurrences: int = 1):
    """Fake the wait's read answering `workloads` (as deployment() makes them: rolled out)."""
    fp.register(["kubectl", *rollouts_read(ns, resources)], stdout=kube_list(*workloads), occurrences=occurrences)


# Istio's mesh and injector ConfigMaps, as diagnose and verify read them.
CONFIGMAPS_READ = ["get", "configmaps", "-n", "istio-system", "-o", "json"]


def namespace_read(ns: str = "my-app") -> list[str]:
    return ["get", "namespace", ns, "-o", "json"]


def register_namespace(fp, objects, ns: str = "my-app", prefix=(), occurrences: int = 1):
    """Fake `kubectl get namespace NS -o json`: the Namespace among `objects`, or NotFound."""
    found = next((o for o in objects if o.get("kind") == "Namespace" and o["metadata"]["name"] == ns), None)
    if found is None:
        fp.register(["kubectl", *prefix, *namespace_read(ns)], returncode=1, occurrences=occurrences,
                    stderr=f'Error from server (NotFound): namespaces "{ns}" not found\n')
    else:
        fp.register(["kubectl", *prefix, *namespace_read(ns)], stdout=json.dumps(found), occurrences=occurrences)


def register_cluster(fp, objects, ns: str = "my-app", prefix=(), root_policies=(), occurrences: int = 1,
                     configmaps=()):
    """Fake the reads of one namespace (its kinds, its Namespace, the root namespace's policies,
    and Istio's ConfigMaps) returning `objects`."""
    fp.register(["kubectl", *prefix, *batch_read(ns)], stdout=kube_list(*[o for o in objects if o.get("kind") != "Namespace"]),
                occurrences=occurrences)
    register_namespace(fp, objects, ns, prefix, occurrences)
    fp.register(["kubectl", *prefix, *ROOT_PA], stdout=kube_list(*root_policies), occurrences=occurrences)
    fp.register(["kubectl", *prefix, *CONFIGMAPS_READ], stdout=kube_list(*configmaps), occurrences=occurrences)


def is_access_review(call) -> bool:
    """The permission check before writes (kubectl create of SelfSubjectAccessReviews)."""
    return list(call)[:1] == ["kubectl"] and "create" in call and "--validate=false" in call


def api_calls(fp) -> list[list[str]]:
    """The kubectl calls made (as calls_made), without the permission check before writes."""
    return [c for c in calls_made(fp) if not is_access_review(c)]
