"""Workload controllers, pod lifecycle and the endpoints controller.

They run synchronously: a write enqueues reconcile keys and the outermost API operation
drains the queue before answering, so by the time kubectl sees a response the Deployment
already has its ReplicaSet, pods and status. Only pod readiness with ``ready_after > 0`` is
delayed, through a small timer thread.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import math
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .selectors import match_selector_object

if TYPE_CHECKING:
    from .core import Core

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"

PODS = ("", "pods")
NODES = ("", "nodes")
SERVICES = ("", "services")
ENDPOINTS = ("", "endpoints")
DEPLOYMENTS = ("apps", "deployments")
REPLICASETS = ("apps", "replicasets")
STATEFULSETS = ("apps", "statefulsets")
DAEMONSETS = ("apps", "daemonsets")

_KIND_KEYS = {
    "Deployment": DEPLOYMENTS, "ReplicaSet": REPLICASETS, "StatefulSet": STATEFULSETS,
    "DaemonSet": DAEMONSETS,
}


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: dict[str, Any]) -> str:
    """Stable pod-template-hash: FNV-32a of the template, encoded like Kubernetes'
    ``rand.SafeEncodeString`` (consonants and digits only)."""
    digest = str(fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()))
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest.encode())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def is_pod_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def merge_conditions(old: list[dict] | None, new: list[dict]) -> list[dict]:
    """Keep a condition's timestamps when its status did not change (so unchanged status
    compares equal and produces no write)."""
    by_type = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        prev = by_type.get(c["type"])
        if prev and prev.get("status") == c.get("status"):
            c = dict(c)
            for ts in ("lastTransitionTime", "lastUpdateTime", "lastProbeTime"):
                if ts in prev:
                    c[ts] = prev[ts]
            same = prev.get("reason") == c.get("reason") and prev.get("message") == c.get("message")
            if same and "lastUpdateTime" in prev:
                c["lastUpdateTime"] = prev["lastUpdateTime"]
        out.append(c)
    return out


class Controllers:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._queue: deque[tuple[str, str, str]] = deque()
        self._queued: set[tuple[str, str, str]] = set()
        self._draining = False
        self.started: set[str] = set()  # uids of pods past their start-up delay
        self.errors: list[str] = []
        # Timer thread for delayed readiness.
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._timer_cond = threading.Condition()
        self._timer_thread: threading.Thread | None = None
        self._stopping = False

    # -- queue ----------------------------------------------------------------------

    def enqueue(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)

    def after_write(self, resource: tuple[str, str], old: dict | None, new: dict | None) -> None:
        obj = new or old
        assert obj is not None
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if resource == DEPLOYMENTS:
            self.enqueue("Deployment", ns, name)
        elif resource == REPLICASETS:
            self.enqueue("ReplicaSet", ns, name)
            ref = controller_of(obj)
            if ref and ref.get("kind") == "Deployment":
                self.enqueue("Deployment", ns, ref["name"])
        elif resource == STATEFULSETS:
            self.enqueue("StatefulSet", ns, name)
        elif resource == DAEMONSETS:
            self.enqueue("DaemonSet", ns, name)
        elif resource == PODS:
            ref = controller_of(obj)
            if ref and ref.get("kind") in _KIND_KEYS:
                self.enqueue(ref["kind"], ns, ref["name"])
            if new is None:
                self.started.discard(meta.get("uid"))
            self.enqueue("Endpoints", ns, "*")
        elif resource == SERVICES:
            self.enqueue("Endpoints", ns, name if new is not None else "-" + name)
        elif resource == NODES:
            for ds in self.core.store.list(DAEMONSETS):
                self.enqueue("DaemonSet", ds["metadata"]["namespace"], ds["metadata"]["name"])

    def drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            budget = 100_000  # guards against a controller bug looping forever
            while self._queue and budget:
                budget -= 1
                key = self._queue.popleft()
                self._queued.discard(key)
                try:
                    self._reconcile(*key)
                except Exception as exc:  # noqa: BLE001 - keep serving; surfaced as cluster.controller_errors
                    self.errors.append(f"{key}: {exc!r}\n{traceback.format_exc()}")
        finally:
            self._draining = False

    def _reconcile(self, kind: str, ns: str, name: str) -> None:
        {
            "Deployment": self.reconcile_deployment,
            "ReplicaSet": self.reconcile_replicaset,
            "StatefulSet": self.reconcile_statefulset,
            "DaemonSet": self.reconcile_daemonset,
            "Endpoints": self.reconcile_endpoints,
        }[kind](ns, name)

    # -- helpers --------------------------------------------------------------------

    def _owned(self, resource, ns: str, owner_uid: str) -> list[dict]:
        return [
            o for o in self.core.store.list(resource, ns)
            if any(r.get("uid") == owner_uid and r.get("controller")
                   for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _adopt(self, resource, owner: dict) -> None:
        """Adopt orphans the owner's selector matches (Kubernetes' ControllerRef adoption)."""
        selector = (owner.get("spec") or {}).get("selector")
        if not selector:
            return
        for obj in self.core.store.list(resource, owner["metadata"]["namespace"]):
            meta = obj["metadata"]
            if controller_of(obj) is None and match_selector_object(selector, meta.get("labels") or {}):
                upd = dict(obj)
                upd["metadata"] = dict(meta, ownerReferences=list(meta.get("ownerReferences") or [])
                                       + [controller_ref(owner)])
                self.core.internal_write(resource, upd, old=obj)

    def _set_status(self, resource, obj: dict, status: dict) -> None:
        if obj.get("status") != status:
            new = dict(obj, status=status)
            self.core.internal_write(resource, new, old=obj)

    # -- pods -----------------------------------------------------------------------

    def init_pod(self, pod: dict[str, Any]) -> None:
        """Schedule a new pod (in place, before it is stored) and set its initial status."""
        spec = pod.setdefault("spec", {})
        if not spec.get("nodeName"):
            spec["nodeName"] = self.core.pick_node()
        pod["status"] = self.pod_status(pod, started=self.core.ready_after <= 0, old=None)
        if self.core.ready_after <= 0:
            self.started.add(pod["metadata"]["uid"])
        else:
            uid, ns, name = pod["metadata"]["uid"], pod["metadata"]["namespace"], pod["metadata"]["name"]
            self.schedule(self.core.ready_after, lambda: self._pod_started(ns, name, uid))

    def _pod_started(self, ns: str, name: str, uid: str) -> None:
        with self.core.op():
            pod = self.core.store.get(PODS, ns, name)
            if pod is None or pod["metadata"].get("uid") != uid:
                return
            self.started.add(uid)
            self.refresh_pod(pod)

    def refresh_pod(self, pod: dict[str, Any]) -> None:
        if pod["metadata"].get("uid") in self.core.frozen_pods:
            return
        started = pod["metadata"].get("uid") in self.started
        status = self.pod_status(pod, started=started, old=pod.get("status"))
        self._set_status(PODS, pod, status)

    def pod_status(self, pod: dict[str, Any], *, started: bool, old: dict | None) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        old = old or {}
        ts = now()
        node = self.core.store.get(NODES, "", spec.get("nodeName", ""))
        host_ip = "172.18.0.2"
        if node:
            for a in (node.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP":
                    host_ip = a["address"]
        # A pod gets its IP with its sandbox, i.e. once it starts.
        pod_ip = old.get("podIP") or (self.core.alloc_pod_ip() if started else None)
        start_time = old.get("startTime") or ts
        proxy_ok = self.core.proxy_ready

        def image_id(c):
            return f"{c.get('image', '')}@sha256:{fnv32a(c.get('image', '').encode()):064x}"[:200]

        def cid(c):
            return "containerd://" + f"{fnv32a((pod['metadata']['uid'] + c.get('name', '')).encode()):08x}" * 8

        def running(c, ready):
            prev = next((s for s in old.get("containerStatuses", []) + old.get("initContainerStatuses", [])
                         if s.get("name") == c.get("name") and "running" in (s.get("state") or {})), None)
            started_at = prev["state"]["running"]["startedAt"] if prev else ts
            return {
                "containerID": cid(c), "image": c.get("image", ""), "imageID": image_id(c),
                "lastState": {}, "name": c.get("name", ""), "ready": ready, "restartCount": 0,
                "started": True, "state": {"running": {"startedAt": started_at}},
            }

        def waiting(c, reason):
            return {
                "image": c.get("image", ""), "imageID": "", "lastState": {}, "name": c.get("name", ""),
                "ready": False, "restartCount": 0, "started": False,
                "state": {"waiting": {"reason": reason}},
            }

        containers = spec.get("containers") or []
        inits = spec.get("initContainers") or []
        status: dict[str, Any] = {}
        if not started:
            status["phase"] = "Pending"
            status["containerStatuses"] = [
                waiting(c, "PodInitializing" if inits else "ContainerCreating") for c in containers
            ]
            if inits:
                status["initContainerStatuses"] = [waiting(c, "PodInitializing") for c in inits]
            unready = [c.get("name", "") for c in containers]
            conditions = [
                {"type": "PodReadyToStartContainers", "status": "False"},
                {"type": "Initialized", "status": "False" if inits else "True",
                 **({"reason": "ContainersNotInitialized",
                     "message": f"containers with incomplete status: [{' '.join(c.get('name', '') for c in inits)}]"}
                    if inits else {})},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(unready)}]"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(unready)}]"},
                {"type": "PodScheduled", "status": "True"},
            ]
        else:
            status["phase"] = "Running"
            cstats = []
            for c in containers:
                cstats.append(running(c, not (c.get("name") == "istio-proxy" and not proxy_ok)))
            istats = []
            for c in inits:
                if c.get("restartPolicy") == "Always":
                    istats.append(running(c, not (c.get("name") == "istio-proxy" and not proxy_ok)))
                else:
                    istats.append({
                        "containerID": cid(c), "image": c.get("image", ""), "imageID": image_id(c),
                        "lastState": {}, "name": c.get("name", ""), "ready": True, "restartCount": 0,
                        "started": False,
                        "state": {"terminated": {"containerID": cid(c), "exitCode": 0, "finishedAt": start_time,
                                                 "reason": "Completed", "startedAt": start_time}},
                    })
            status["containerStatuses"] = cstats
            if istats:
                status["initContainerStatuses"] = istats
            unready = [s["name"] for s in cstats if not s["ready"]] + [
                s["name"] for s in istats if "running" in s["state"] and not s["ready"]
            ]
            ready = "False" if unready else "True"
            extra = ({"reason": "ContainersNotReady",
                      "message": f"containers with unready status: [{' '.join(unready)}]"} if unready else {})
            conditions = [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": ready, **extra},
                {"type": "ContainersReady", "status": ready, **extra},
                {"type": "PodScheduled", "status": "True"},
            ]
        for c in conditions:
            c.setdefault("lastProbeTime", None)
            c.setdefault("lastTransitionTime", ts)
        status["conditions"] = merge_conditions(old.get("conditions"), conditions)
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
        status["qosClass"] = _qos_class(spec)
        status["startTime"] = start_time
        return status

    # -- deployments ----------------------------------------------------------------

    def reconcile_deployment(self, ns: str, name: str) -> None:
        dep = self.core.store.get(DEPLOYMENTS, ns, name)
        if dep is None:
            return
        spec = dep.get("spec") or {}
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        h = template_hash(template)
        self._adopt(REPLICASETS, dep)
        rss = self._owned(REPLICASETS, ns, dep["metadata"]["uid"])
        revisions = [int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
                     for rs in rss]
        max_rev = max(revisions, default=0)
        new_rs = next((rs for rs in rss if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == h), None)

        if not spec.get("paused"):
            surge = _surge(spec, replicas)
            if new_rs is None:
                selector = copy.deepcopy(spec.get("selector") or {})
                selector.setdefault("matchLabels", {})["pod-template-hash"] = h
                tmpl = copy.deepcopy(template)
                tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
                rs = {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{name}-{h}",
                        "namespace": ns,
                        "labels": dict(tmpl["metadata"]["labels"]),
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                            "deployment.kubernetes.io/revision": str(max_rev + 1),
                        },
                        "ownerReferences": [controller_ref(dep)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": tmpl,
                             **({"minReadySeconds": spec["minReadySeconds"]} if "minReadySeconds" in spec else {})},
                }
                new_rs = self.core.internal_create(REPLICASETS, rs)
            else:
                ann = dict(new_rs["metadata"].get("annotations") or {})
                rev = int(ann.get("deployment.kubernetes.io/revision", "0"))
                want_rev = rev if rev == max_rev else max_rev + 1  # rollback: old template is new again
                if (new_rs["spec"].get("replicas") != replicas or rev != want_rev
                        or ann.get("deployment.kubernetes.io/desired-replicas") != str(replicas)):
                    ann.update({
                        "deployment.kubernetes.io/desired-replicas": str(replicas),
                        "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                        "deployment.kubernetes.io/revision": str(want_rev),
                    })
                    upd = copy.deepcopy(new_rs)
                    upd["metadata"]["annotations"] = ann
                    upd["spec"]["replicas"] = replicas
                    new_rs = self.core.internal_write(REPLICASETS, upd, old=new_rs)
            # Old ReplicaSets are scaled straight to zero (their pods go at once).
            for rs in rss:
                if rs["metadata"]["uid"] != new_rs["metadata"]["uid"] and rs["spec"].get("replicas") != 0:
                    upd = copy.deepcopy(rs)
                    upd["spec"]["replicas"] = 0
                    self.core.internal_write(REPLICASETS, upd, old=rs)

        # Status, from the (possibly just updated) ReplicaSets.
        dep = self.core.store.get(DEPLOYMENTS, ns, name)
        rss = self._owned(REPLICASETS, ns, dep["metadata"]["uid"])
        new_rs = next((rs for rs in rss if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == h), None)
        total = sum((rs.get("status") or {}).get("replicas", 0) for rs in rss)
        ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in rss)
        available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in rss)
        updated = (new_rs.get("status") or {}).get("replicas", 0) if new_rs else 0
        max_unavailable = _max_unavailable(spec, replicas)
        ts = now()
        conditions = []
        if available >= replicas - max_unavailable:
            conditions.append({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                               "message": "Deployment has minimum availability.",
                               "lastUpdateTime": ts, "lastTransitionTime": ts})
        else:
            conditions.append({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                               "message": "Deployment does not have minimum availability.",
                               "lastUpdateTime": ts, "lastTransitionTime": ts})
        if new_rs is not None:
            rs_name = new_rs["metadata"]["name"]
            complete = updated == replicas and total == replicas and available >= replicas
            conditions.append({
                "type": "Progressing", "status": "True",
                "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                "message": (f'ReplicaSet "{rs_name}" has successfully progressed.' if complete
                            else f'ReplicaSet "{rs_name}" is progressing.'),
                "lastUpdateTime": ts, "lastTransitionTime": ts,
            })
        old_status = dep.get("status") or {}
        conditions = merge_conditions(old_status.get("conditions"), conditions)
        # Kubernetes lists Available first, then Progressing.
        status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1)}
        if total:
            status["replicas"] = total
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        unavailable = max(0, total - available)
        if unavailable:
            status["unavailableReplicas"] = unavailable
        status["conditions"] = conditions
        # The controller also records the revision on the Deployment itself.
        if new_rs is not None:
            rev = (new_rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
            anns = dep["metadata"].get("annotations") or {}
            if rev and anns.get("deployment.kubernetes.io/revision") != rev:
                upd = dict(dep)
                upd["metadata"] = dict(dep["metadata"], annotations=dict(anns, **{"deployment.kubernetes.io/revision": rev}))
                dep = self.core.internal_write(DEPLOYMENTS, upd, old=dep)
        self._set_status(DEPLOYMENTS, dep, status)

    # -- replicasets ----------------------------------------------------------------

    def reconcile_replicaset(self, ns: str, name: str) -> None:
        rs = self.core.store.get(REPLICASETS, ns, name)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        desired = spec.get("replicas", 1)
        self._adopt(PODS, rs)
        pods = self._owned(PODS, ns, rs["metadata"]["uid"])
        if len(pods) < desired:
            for _ in range(desired - len(pods)):
                self.core.internal_create(PODS, self._pod_from_template(rs, spec.get("template") or {},
                                                                        generate_name=f"{name}-"))
        elif len(pods) > desired:
            # Kubernetes removes unready pods first, then the newest.
            newest_first = sorted(pods, key=lambda p: int(p["metadata"]["resourceVersion"]), reverse=True)
            victims = sorted(newest_first, key=is_pod_ready)[: len(pods) - desired]
            for p in victims:
                self.core.internal_delete(PODS, p)
        rs = self.core.store.get(REPLICASETS, ns, name)
        pods = self._owned(PODS, ns, rs["metadata"]["uid"])
        ready = sum(1 for p in pods if is_pod_ready(p))
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        self._set_status(REPLICASETS, rs, status)

    def _pod_from_template(self, owner: dict, template: dict, *, generate_name: str | None = None,
                           name: str | None = None, extra_labels: dict | None = None) -> dict:
        tmeta = template.get("metadata") or {}
        meta: dict[str, Any] = {
            "namespace": owner["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}, **(extra_labels or {})),
            "ownerReferences": [controller_ref(owner)],
        }
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if name:
            meta["name"] = name
        else:
            meta["generateName"] = generate_name
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": copy.deepcopy(template.get("spec") or {})}

    # -- statefulsets ---------------------------------------------------------------

    def reconcile_statefulset(self, ns: str, name: str) -> None:
        sts = self.core.store.get(STATEFULSETS, ns, name)
        if sts is None:
            return
        spec = sts.get("spec") or {}
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        revision = f"{name}-{template_hash(template)}"
        pods = {p["metadata"]["name"]: p for p in self._owned(PODS, ns, sts["metadata"]["uid"])}
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            pod = pods.pop(pod_name, None)
            if pod is not None and (pod["metadata"].get("labels") or {}).get("controller-revision-hash") != revision:
                self.core.internal_delete(PODS, pod)
                pod = None
            if pod is None:
                p = self._pod_from_template(sts, template, name=pod_name, extra_labels={
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(i),
                })
                p["spec"]["hostname"] = pod_name
                if spec.get("serviceName"):
                    p["spec"]["subdomain"] = spec["serviceName"]
                self.core.internal_create(PODS, p)
        for extra in pods.values():  # ordinals beyond replicas
            self.core.internal_delete(PODS, extra)
        sts = self.core.store.get(STATEFULSETS, ns, name)
        owned = self._owned(PODS, ns, sts["metadata"]["uid"])
        ready = sum(1 for p in owned if is_pod_ready(p))
        current = sum(1 for p in owned if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision)
        status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(owned),
            "currentReplicas": current,
            "updatedReplicas": current,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
            "availableReplicas": ready,
        }
        if ready:
            status["readyReplicas"] = ready
        self._set_status(STATEFULSETS, sts, status)

    # -- daemonsets -----------------------------------------------------------------

    def reconcile_daemonset(self, ns: str, name: str) -> None:
        ds = self.core.store.get(DAEMONSETS, ns, name)
        if ds is None:
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        h = template_hash(template)
        node_selector = (template.get("spec") or {}).get("nodeSelector") or {}
        nodes = [n for n in self.core.store.list(NODES)
                 if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in node_selector.items())]
        node_names = {n["metadata"]["name"] for n in nodes}
        pods = self._owned(PODS, ns, ds["metadata"]["uid"])
        by_node: dict[str, dict] = {}
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName", "")
            stale = (p["metadata"].get("labels") or {}).get("controller-revision-hash") != h
            if node not in node_names or node in by_node or stale:
                self.core.internal_delete(PODS, p)
            else:
                by_node[node] = p
        for n in sorted(node_names - set(by_node)):
            p = self._pod_from_template(ds, template, generate_name=f"{name}-", extra_labels={
                "controller-revision-hash": h,
                "pod-template-generation": str(ds["metadata"].get("generation", 1)),
            })
            p["spec"]["nodeName"] = n
            self.core.internal_create(PODS, p)
        ds = self.core.store.get(DAEMONSETS, ns, name)
        owned = self._owned(PODS, ns, ds["metadata"]["uid"])
        ready = sum(1 for p in owned if is_pod_ready(p))
        status: dict[str, Any] = {
            "currentNumberScheduled": len(owned),
            "desiredNumberScheduled": len(node_names),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": sum(
                1 for p in owned if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == h),
        }
        if ready:
            status["numberAvailable"] = ready
        if len(node_names) - ready > 0:
            status["numberUnavailable"] = len(node_names) - ready
        self._set_status(DAEMONSETS, ds, status)

    # -- endpoints ------------------------------------------------------------------

    def reconcile_endpoints(self, ns: str, name: str) -> None:
        if name.startswith("-"):  # service deleted
            ep = self.core.store.get(ENDPOINTS, ns, name[1:])
            if ep is not None and (ep["metadata"].get("labels") or {}).get("endpoints.kubernetes.io/managed-by") != "manual":
                self.core.internal_delete(ENDPOINTS, ep)
            return
        services = self.core.store.list(SERVICES, ns)
        if name != "*":
            services = [s for s in services if s["metadata"]["name"] == name]
        pods = self.core.store.list(PODS, ns)
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector")
            if not selector:
                continue  # Endpoints of selector-less services are managed by hand
            ready, not_ready = [], []
            for p in pods:
                labels = p["metadata"].get("labels") or {}
                if not all(labels.get(k) == v for k, v in selector.items()):
                    continue
                ip = (p.get("status") or {}).get("podIP")
                if not ip:
                    continue
                addr = {"ip": ip, "nodeName": (p.get("spec") or {}).get("nodeName", ""),
                        "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                                      "uid": p["metadata"]["uid"]}}
                (ready if is_pod_ready(p) else not_ready).append(addr)
            ports = []
            for sp in (svc.get("spec") or {}).get("ports") or []:
                target = sp.get("targetPort", sp.get("port"))
                port = {"port": target if isinstance(target, int) else sp.get("port"),
                        "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    port["name"] = sp["name"]
                ports.append(port)
            subsets = []
            if ready or not_ready:
                subset: dict[str, Any] = {}
                if ready:
                    subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
                if not_ready:
                    subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
                subset["ports"] = ports
                subsets.append(subset)
            svc_name = svc["metadata"]["name"]
            existing = self.core.store.get(ENDPOINTS, ns, svc_name)
            labels = dict(svc["metadata"].get("labels") or {})
            if existing is None:
                ep = {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": svc_name, "namespace": ns, **({"labels": labels} if labels else {})}}
                if subsets:
                    ep["subsets"] = subsets
                self.core.internal_create(ENDPOINTS, ep)
            elif (existing.get("subsets") or []) != subsets:
                upd = dict(existing)
                if subsets:
                    upd["subsets"] = subsets
                else:
                    upd.pop("subsets", None)
                self.core.internal_write(ENDPOINTS, upd, old=existing)

    # -- timers ---------------------------------------------------------------------

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        with self._timer_cond:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))
            if self._timer_thread is None:
                self._timer_thread = threading.Thread(target=self._timer_loop, name="cluster-timers", daemon=True)
                self._timer_thread.start()
            self._timer_cond.notify()

    def _timer_loop(self) -> None:
        while True:
            with self._timer_cond:
                while not self._stopping and (not self._timers or self._timers[0][0] > time.monotonic()):
                    timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._timer_cond.wait(timeout)
                if self._stopping:
                    return
                _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a timer must not kill the thread
                self.errors.append(f"timer: {exc!r}")

    def stop(self) -> None:
        with self._timer_cond:
            self._stopping = True
            self._timer_cond.notify_all()
        if self._timer_thread is not None:
            self._timer_thread.join(timeout=2)


def _qos_class(spec: dict[str, Any]) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _percent(value: Any, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        raw = replicas * int(value[:-1]) / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _surge(spec: dict, replicas: int) -> int:
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    return _percent(ru.get("maxSurge", "25%"), replicas, True)


def _max_unavailable(spec: dict, replicas: int) -> int:
    if (spec.get("strategy") or {}).get("type") == "Recreate":
        return 0
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    return _percent(ru.get("maxUnavailable", "25%"), replicas, False)
