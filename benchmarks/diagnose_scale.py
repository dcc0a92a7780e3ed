#!/usr/bin/env python3
"""How fast is `kubectl mesh diagnose -f` on a large cluster snapshot?

Generates a synthetic snapshot, saved as `kubectl get ... -o json` writes it
(one `List`): by default 10,000 pods behind 1,000 services (Deployments and
ReplicaSets included) in 50 namespaces, 500 DestinationRules and 500
VirtualServices (90/10 canaries), a STRICT PeerAuthentication per namespace,
and a few broken things so that every check has work to do. Then runs
`diagnose -f` on it in a subprocess and prints its CPU time and peak memory.

Targets: under 1 s of CPU and under 200 MB. Exit status 1 when a target is
missed, so the script can gate CI.

    .venv/bin/python benchmarks/diagnose_scale.py [--pods N --services N --rules N] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CPU_TARGET_S = 1.0
MEMORY_TARGET_MB = 200


def _pod(ns: str, app: str, version: str, index: int, node: str, meshed: bool) -> dict:
    rs = f"{app}-{version}-7c9d8f6b5"
    containers = [{
        "name": app, "image": f"ghcr.io/example/{app}:{version}",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }]
    statuses = [{"name": app, "ready": True, "restartCount": 0, "image": f"ghcr.io/example/{app}:{version}"}]
    if meshed:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.32.0",
                           "args": ["proxy", "sidecar"], "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
                           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}})
        statuses.append({"name": "istio-proxy", "ready": True, "restartCount": 0})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{rs}-{index:05x}", "namespace": ns, "uid": f"{ns}-{app}-{version}-{index}",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": app, "version": version, "pod-template-hash": "7c9d8f6b5",
                       "security.istio.io/tlsMode": "istio",
                       "service.istio.io/canonical-name": app},
            "annotations": {"sidecar.istio.io/status": '{"containers":["istio-proxy"],"revision":"default"}'}
            if meshed else {},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "controller": True,
                                 "uid": f"rs-{ns}-{rs}"}],
        },
        "spec": {"containers": containers, "nodeName": node, "serviceAccountName": app},
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": statuses},
    }


def _workload(ns: str, app: str, version: str, replicas: int, annotations: dict) -> list[dict]:
    labels = {"app": app, "version": version}
    rs = f"{app}-{version}-7c9d8f6b5"
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{app}-{version}", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels, "annotations": annotations},
                              "spec": {"containers": [{"name": app, "image": f"ghcr.io/example/{app}:{version}"}]}}},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }
    replica_set = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs, "namespace": ns, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{app}-{version}", "controller": True}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {**labels, "pod-template-hash": "7c9d8f6b5"}}},
    }
    return [deploy, replica_set]


def generate(pods: int = 10_000, services: int = 1_000, rules: int = 500, namespaces: int = 50) -> dict:
    items: list[dict] = []
    nodes = [f"node-{i}" for i in range(100)]
    for i, node in enumerate(nodes):
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {
            "kubernetes.io/hostname": node, "topology.kubernetes.io/region": "us-west-1",
            "topology.kubernetes.io/zone": f"us-west-1{'abc'[i % 3]}"}}})
    per_service = pods // services
    per_ns = services // namespaces
    made = 0
    for n in range(namespaces):
        ns = f"team-{n:03d}"
        # one namespace in ten was labelled after its pods started: they lack the sidecar
        late = n % 10 == 9
        items.append({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}})
        items.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                      "metadata": {"name": "strict-mtls", "namespace": ns}, "spec": {"mtls": {"mode": "STRICT"}}})
        for s in range(per_ns):
            app = f"svc-{s:03d}"
            index = n * per_ns + s
            items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                          "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80}]}})
            canary = index < rules
            versions = [("v1", per_service - 1), ("v2", 1)] if canary else [("v1", per_service)]
            for version, replicas in versions:
                low = {"sidecar.istio.io/proxyCPU": "10m"} if index % 97 == 0 else {}
                items.extend(_workload(ns, app, version, replicas, low))
                for k in range(replicas):
                    items.append(_pod(ns, app, version, k, nodes[(made + k) % len(nodes)], meshed=not late))
                made += replicas
            if not canary:
                continue
            # every 50th canary's subset names a label its pods do not carry: a 503
            canary_label = "v3" if index % 50 == 0 else "v2"
            items.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                          "metadata": {"name": app, "namespace": ns, "creationTimestamp": "2025-01-01T00:00:00Z"},
                          "spec": {"host": app,
                                   "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 100}},
                                                     "outlierDetection": {"consecutive5xxErrors": 5}},
                                   "subsets": [{"name": "stable", "labels": {"version": "v1"}},
                                               {"name": "canary", "labels": {"version": canary_label}},
                                               {"name": "west",
                                                "labels": {"topology.kubernetes.io/region": "us-west-1"}}]}})
            items.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                          "metadata": {"name": app, "namespace": ns},
                          "spec": {"hosts": [app], "http": [{"route": [
                              {"destination": {"host": app, "subset": "stable"}, "weight": 90},
                              {"destination": {"host": app, "subset": "canary"}, "weight": 10}]}]}})
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def run(path: str) -> dict:
    """diagnose -f PATH in a child process: its CPU time (user+sys) and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kubectl_mesh", "diagnose", "-f", path, "-o", "json"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"diagnose failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    peak = after.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"cpu": cpu, "wall": wall, "peak_mb": peak, "exit": proc.returncode, "counts": doc["counts"],
            "objects": doc["source"]["objects"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--rules", type=int, default=500, help="DestinationRules and VirtualServices (each)")
    parser.add_argument("--keep", metavar="FILE", help="write the snapshot here and keep it")
    args = parser.parse_args(argv)

    snapshot = generate(args.pods, args.services, args.rules)
    counts = {}
    for item in snapshot["items"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    path = args.keep or tempfile.mkstemp(suffix=".json", prefix="mesh-snapshot-")[1]
    with open(path, "w", encoding="utf-8") as out:
        json.dump(snapshot, out)
    size = os.path.getsize(path) / 2**20
    try:
        result = run(path)
    finally:
        if not args.keep:
            os.unlink(path)
    print(f"snapshot: {counts.get('Pod', 0)} pods, {counts.get('Service', 0)} services, "
          f"{counts.get('DestinationRule', 0)} DestinationRules, {counts.get('VirtualService', 0)} VirtualServices, "
          f"{len(snapshot['items'])} objects, {size:.1f} MB of JSON")
    print(f"findings: {result['counts']} (diagnose exit {result['exit']})")
    ok_cpu = result["cpu"] < CPU_TARGET_S
    ok_mem = result["peak_mb"] < MEMORY_TARGET_MB
    print(f"cpu time: {result['cpu']:.2f} s (target < {CPU_TARGET_S:g} s) {'ok' if ok_cpu else 'OVER'}")
    print(f"peak memory: {result['peak_mb']:.0f} MB (target < {MEMORY_TARGET_MB} MB) {'ok' if ok_mem else 'OVER'}")
    print(f"wall time: {result['wall']:.2f} s")
    return 0 if ok_cpu and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
