"""Cluster snapshots as `kubectl get -A -o json` prints them, at any size, for the benchmarks.

Two kinds of pod:

- realistic (the default): built from the real injected pod specs in
  tests/data/injected/ (Istio's sidecar injector test output), with what an
  API server and kubelet add: metadata (uid, resourceVersion, generateName,
  ownerReferences, managedFields of kube-controller-manager and kubelet),
  defaulted spec fields (dnsPolicy, tolerations, the service account token
  volume and its mounts, probes' defaults), and status (conditions, IPs,
  container and init container statuses). 6-11 KB a pod as YAML.
- compact: the project's first benchmark pod, about 1.2 KB as YAML; kept as
  a second, named figure.

Services, Deployments, ReplicaSets, DestinationRules, VirtualServices,
PeerAuthentications, namespaces and nodes scale with the pod count, in the
proportions of the first benchmark: per 10,000 pods, 1,000 services in 50
namespaces, 500 DestinationRules and 500 VirtualServices (90/10 canaries),
100 nodes; one namespace in ten was labelled after its pods started (its
pods lack the sidecar), and a few things are broken so every check works.

The file is written object by object (a 50,000-pod snapshot is 1.3 GB of
JSON), indented as kubectl indents it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "injected"
# Injected specs with the sidecar as a native sidecar (init container) and as a classic container.
MESHED_SOURCES = ("hello.yaml.injected", "hello-old-version.yaml.injected", "resource_annotations.yaml.injected")
ISTIO_CONTAINERS = {"istio-init", "istio-proxy", "istio-validation"}
ISTIO_VOLUMES = {"workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data",
                 "istio-podinfo", "istio-token", "istiod-ca-cert", "istio-ca-crl"}
TIME = "2025-03-01T10:00:00Z"


def _hex(*parts, length: int = 64) -> str:
    """A stable hex digest (str hashes change from run to run)."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()
    return (digest * 2)[:length]


def _templates() -> list[dict]:
    """Pod templates (metadata + spec) of the injected workloads."""
    out = []
    for name in MESHED_SOURCES:
        for doc in yaml.safe_load_all((DATA / name).read_text()):
            if doc and doc.get("kind") in ("Deployment", "StatefulSet"):
                out.append(doc["spec"]["template"])
    return out


def _uninjected(template: dict) -> dict:
    """The template as it was before Istio's webhook saw it."""
    t = copy.deepcopy(template)
    annotations = t["metadata"].get("annotations") or {}
    for key in list(annotations):
        if "istio" in key or key.startswith(("prometheus.io/", "kubectl.kubernetes.io/default-")):
            del annotations[key]
    labels = t["metadata"].get("labels") or {}
    for key in list(labels):
        if "istio.io" in key:
            del labels[key]
    spec = t["spec"]
    spec["containers"] = [c for c in spec.get("containers", []) if c["name"] not in ISTIO_CONTAINERS]
    spec["initContainers"] = [c for c in spec.get("initContainers", []) if c["name"] not in ISTIO_CONTAINERS]
    if not spec["initContainers"]:
        del spec["initContainers"]
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in ISTIO_VOLUMES]
    for c in spec["containers"]:
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["name"] not in ISTIO_VOLUMES]
    return t


def fields_v1(value, depth: int = 2) -> dict:
    """managedFields' fieldsV1 for a value, as the API server records an Update of it
    (cut at `depth` levels, so that a pod stays the size real ones have)."""
    if depth == 0:
        return {}
    if isinstance(value, dict):
        return {f"f:{k}": fields_v1(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for item in value:
            key = {k: item[k] for k in ("name", "containerPort", "type", "mountPath", "key") if k in item}
            out["k:" + json.dumps(key, separators=(",", ":"))] = {".": {}, **fields_v1(item, depth - 1)}
        return out
    return {}


def _app_container(container: dict, app: str, version: str, index: int) -> dict:
    c = copy.deepcopy(container)
    c["name"] = app
    c["image"] = f"ghcr.io/example/{app}:{version}"
    c.setdefault("env", [])
    c["env"] += [{"name": "LOG_LEVEL", "value": "info"},
                 {"name": "UPSTREAM_URL", "value": f"http://svc-{(index * 7 + 3) % 20:03d}.team-000:80"}]
    c["resources"] = {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}
    c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                           "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    return c


def _defaulted(container: dict) -> dict:
    """What the API server fills into every container."""
    c = dict(container)
    c.setdefault("imagePullPolicy", "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c["volumeMounts"] = [*c.get("volumeMounts", []), {
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": True}]
    for port in c.get("ports", []):
        port.setdefault("protocol", "TCP")
    return c


class PodFactory:
    """Pods of one app version: the shared parts built once, the per-pod parts per pod."""

    def __init__(self, template: dict, ns: str, app: str, version: str, index: int, compact: bool = False):
        self.ns, self.app, self.version, self.compact = ns, app, version, compact
        self.hash = _hex(ns, app, version, length=10)
        self.rs = f"{app}-{version}-{self.hash}"
        self.meshed = any(c["name"] == "istio-proxy"
                          for c in [*template["spec"].get("containers", []),
                                    *template["spec"].get("initContainers", [])])
        meta = template["metadata"]
        self.labels = {**{k: v for k, v in (meta.get("labels") or {}).items()
                          if k not in ("app", "tier", "track")},
                       "app": app, "version": version, "pod-template-hash": self.hash}
        if self.meshed:
            self.labels["service.istio.io/canonical-name"] = app
            self.labels["service.istio.io/canonical-revision"] = version
        self.annotations = dict(meta.get("annotations") or {})
        spec = copy.deepcopy(template["spec"])
        containers = spec.get("containers", [])
        containers[0] = _app_container(containers[0], app, version, index)
        for c in containers:
            if c["name"] == "istio-proxy":
                for env in c.get("env", []):
                    if env["name"] == "ISTIO_META_WORKLOAD_NAME":
                        env["value"] = f"{app}-{version}"
                    elif env["name"] == "ISTIO_META_OWNER":
                        env["value"] = f"kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{app}-{version}"
        spec["containers"] = [_defaulted(c) for c in containers]
        if spec.get("initContainers"):
            spec["initContainers"] = [_defaulted(c) for c in spec["initContainers"]]
        spec["volumes"] = [*spec.get("volumes", []), {"name": "kube-api-access", "projected": {
            "defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                            "path": "namespace"}]}}]}}]
        spec.update({"dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
                     "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
                     "schedulerName": "default-scheduler",
                     "securityContext": {}, "serviceAccount": app, "serviceAccountName": app,
                     "terminationGracePeriodSeconds": 30,
                     "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                                      "operator": "Exists", "tolerationSeconds": 300},
                                     {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
                                      "operator": "Exists", "tolerationSeconds": 300}]})
        self.spec = spec
        # What kube-controller-manager sent (the template before the webhook injected the proxy).
        self.spec_fields = fields_v1({k: v for k, v in spec.items()
                                      if k not in ("nodeName", "initContainers", "volumes")}, 1)
        self.spec_fields["f:containers"] = fields_v1([c for c in spec["containers"]
                                                      if c["name"] not in ISTIO_CONTAINERS])
        self.owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": self.rs, "uid": f"uid-rs-{self.rs}",
                       "controller": True, "blockOwnerDeletion": True}]

    def _statuses(self, names: list[str], init: bool) -> list[dict]:
        out = []
        for name in names:
            image = next(c["image"] for c in [*self.spec["containers"], *self.spec.get("initContainers", [])]
                         if c["name"] == name)
            state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": TIME, "finishedAt": TIME,
                                    "containerID": "containerd://" + _hex(name)}} \
                if init and name == "istio-init" else {"running": {"startedAt": TIME}}
            out.append({"containerID": "containerd://" + _hex(self.rs, name), "image": image,
                        "imageID": f"{image.split(':')[0]}@sha256:{_hex(image)}",
                        "name": name, "ready": True, "restartCount": 0,
                        "started": "terminated" not in state, "state": state})
        return out

    def pod(self, k: int, node: str, ip: str) -> dict:
        name = f"{self.rs}-{k:05x}"
        if self.compact:
            return self._compact(name, node)
        spec = dict(self.spec)
        spec["nodeName"] = node
        conditions = [{"lastTransitionTime": TIME, "status": "True", "type": t}
                      for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        status = {
            "conditions": conditions,
            "containerStatuses": self._statuses([c["name"] for c in spec["containers"]], False),
            "hostIP": "10.128.0.7", "hostIPs": [{"ip": "10.128.0.7"}],
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "Burstable", "startTime": TIME,
        }
        if spec.get("initContainers"):
            status["initContainerStatuses"] = self._statuses([c["name"] for c in spec["initContainers"]], True)
        metadata = {
            "annotations": self.annotations, "creationTimestamp": TIME, "generateName": f"{self.rs}-",
            "labels": self.labels,
            "managedFields": [
                {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager",
                 "operation": "Update", "time": TIME, "fieldsV1": {
                     "f:metadata": {"f:generateName": {}, "f:labels": {},
                                    "f:ownerReferences": {".": {}, f'k:{{"uid":"uid-rs-{self.rs}"}}': {}}},
                     "f:spec": self.spec_fields}},
                {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubelet", "operation": "Update",
                 "subresource": "status", "time": TIME, "fieldsV1": {"f:status": fields_v1(status, 1)}},
            ],
            "name": name, "namespace": self.ns, "ownerReferences": self.owner,
            "resourceVersion": str(100000 + k), "uid": _hex(self.rs, k, length=36),
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}

    def _compact(self, name: str, node: str) -> dict:
        """The first benchmark's pod (about 1.2 KB as YAML)."""
        app, version = self.app, self.version
        containers = [{"name": app, "image": f"ghcr.io/example/{app}:{version}",
                       "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
        statuses = [{"name": app, "ready": True, "restartCount": 0, "image": f"ghcr.io/example/{app}:{version}"}]
        if self.meshed:
            containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.32.0",
                               "args": ["proxy", "sidecar"],
                               "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
                               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}})
            statuses.append({"name": "istio-proxy", "ready": True, "restartCount": 0})
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": self.ns, "uid": f"{self.ns}-{name}", "creationTimestamp": TIME,
            "labels": {"app": app, "version": version, "pod-template-hash": self.hash},
            "annotations": {"sidecar.istio.io/status": '{"containers":["istio-proxy"],"revision":"default"}'}
            if self.meshed else {},
            "ownerReferences": self.owner},
            "spec": {"containers": containers, "nodeName": node, "serviceAccountName": app},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": statuses}}


def _workload(factory: PodFactory, template: dict, replicas: int, annotations: dict) -> list[dict]:
    ns, app, version = factory.ns, factory.app, factory.version
    labels = {"app": app, "version": version}
    name = f"{app}-{version}"
    tmpl_meta = {"labels": dict(labels), "annotations": {**annotations}}
    tmpl_spec = {"containers": [{"name": app, "image": f"ghcr.io/example/{app}:{version}",
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-deploy-{ns}-{name}", "generation": 1,
                     "creationTimestamp": TIME, "labels": labels, "resourceVersion": "4242",
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "revisionHistoryLimit": 10,
                 "progressDeadlineSeconds": 600,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": tmpl_meta, "spec": tmpl_spec}},
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "updatedReplicas": replicas, "observedGeneration": 1,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                   "lastTransitionTime": TIME, "lastUpdateTime": TIME}]},
    }
    replica_set = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": factory.rs, "namespace": ns, "uid": f"uid-rs-{factory.rs}", "creationTimestamp": TIME,
                     "labels": {**labels, "pod-template-hash": factory.hash},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                          "uid": deploy["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {**labels, "pod-template-hash": factory.hash}},
                 "template": {"metadata": {**tmpl_meta, "labels": {**labels, "pod-template-hash": factory.hash}},
                              "spec": tmpl_spec}},
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }
    return [deploy, replica_set]


def objects(pods: int = 10_000, *, compact: bool = False):
    """The snapshot's objects, one at a time (nodes, then namespace by namespace)."""
    services = max(1, pods // 10)
    rules = max(1, services // 2)
    namespaces = max(1, services // 20)
    per_service = max(1, pods // services)
    per_ns = max(1, services // namespaces)
    nodes = [f"node-{i:03d}" for i in range(max(1, pods // 100))]
    meshed_templates = _templates()
    bare_templates = [_uninjected(t) for t in meshed_templates]
    for i, node in enumerate(nodes):
        yield {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "uid": f"uid-node-{i}", "labels": {
            "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "topology.kubernetes.io/region": "us-west-1",
            "topology.kubernetes.io/zone": f"us-west-1{'abc'[i % 3]}"}}}
    made = 0
    for n in range(namespaces):
        ns = f"team-{n:03d}"
        late = n % 10 == 9  # labelled after its pods started: they lack the sidecar
        yield {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": ns, "uid": f"uid-ns-{ns}", "creationTimestamp": TIME,
            "labels": {"istio-injection": "enabled", "kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        yield {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
               "metadata": {"name": "strict-mtls", "namespace": ns, "creationTimestamp": TIME},
               "spec": {"mtls": {"mode": "STRICT"}}}
        for s in range(per_ns):
            app = f"svc-{s:03d}"
            index = n * per_ns + s
            yield {"apiVersion": "v1", "kind": "Service", "metadata": {
                "name": app, "namespace": ns, "uid": f"uid-svc-{ns}-{app}", "creationTimestamp": TIME,
                "labels": {"app": app}},
                "spec": {"selector": {"app": app}, "type": "ClusterIP", "clusterIP": f"10.96.{n % 256}.{s % 256}",
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                         "sessionAffinity": "None"}, "status": {"loadBalancer": {}}}
            canary = index < rules
            versions = [("v1", per_service - 1), ("v2", 1)] if canary and per_service > 1 else [("v1", per_service)]
            for version, replicas in versions:
                source = (bare_templates if late else meshed_templates)[index % len(meshed_templates)]
                factory = PodFactory(source, ns, app, version, index, compact=compact)
                low = {"sidecar.istio.io/proxyCPU": "10m"} if index % 97 == 0 else {}
                yield from _workload(factory, source, replicas, low)
                for k in range(replicas):
                    yield factory.pod(k, nodes[(made + k) % len(nodes)], f"10.{(made + k) >> 16 & 255}."
                                      f"{(made + k) >> 8 & 255}.{(made + k) & 255}")
                made += replicas
            if not canary:
                continue
            canary_label = "v3" if index % 50 == 0 else "v2"  # every 50th canary's subset selects nothing: a 503
            yield {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": app, "namespace": ns, "creationTimestamp": TIME, "generation": 1},
                   "spec": {"host": app,
                            "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 100}},
                                              "outlierDetection": {"consecutive5xxErrors": 5}},
                            "subsets": [{"name": "stable", "labels": {"version": "v1"}},
                                        {"name": "canary", "labels": {"version": canary_label}},
                                        {"name": "west", "labels": {"topology.kubernetes.io/region": "us-west-1"}}]}}
            yield {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                   "metadata": {"name": app, "namespace": ns, "creationTimestamp": TIME, "generation": 1},
                   "spec": {"hosts": [app], "http": [{"route": [
                       {"destination": {"host": app, "subset": "stable"}, "weight": 90},
                       {"destination": {"host": app, "subset": "canary"}, "weight": 10}]}]}}


def write(path: str | os.PathLike, pods: int = 10_000, *, compact: bool = False) -> dict[str, int]:
    """Write the snapshot to `path` as kubectl's `get -A -o json` does (one List, 4-space
    indent); return the count of objects by kind."""
    counts: dict[str, int] = {}
    with open(path, "w", encoding="utf-8") as out:
        out.write('{\n    "apiVersion": "v1",\n    "items": [')
        first = True
        for obj in objects(pods, compact=compact):
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
            text = json.dumps(obj, indent=4)
            out.write(("\n" if first else ",\n") + "        " + text.replace("\n", "\n        "))
            first = False
        out.write('\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n')
    return counts


def pod_yaml_sizes(pods: int = 200) -> list[int]:
    """Sizes in bytes of the pods as YAML (the issue's 6-11 KB a pod)."""
    return [len(yaml.safe_dump(o)) for o in objects(pods) if o["kind"] == "Pod"]


if __name__ == "__main__":
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else "snapshot.json"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    print(write(target, size), os.path.getsize(target) / 2**20, "MB")
