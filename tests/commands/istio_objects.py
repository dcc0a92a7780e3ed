"""Builders and fakes shared by the policy commands' process-boundary tests
(mtls, canary, circuit-breaker, sidecar-resources)."""

from __future__ import annotations

import copy
import io
import json

from kubectl_mesh.apply.merge_patch import apply_merge_patch
from tests.helpers import ISTIO_KINDS, calls_made, is_access_review, kube_list, pod

NS = "my-app"
# The one batched read of canary and circuit-breaker.
SERVICE_READ = ["get", "services,pods," + ISTIO_KINDS, "-n", NS, "-o", "json"]
CREATE = ["create", "-f", "-", "-o", "json"]
PATCH_BODY = "<patch>"
DR_RESOURCE = "destinationrules.networking.istio.io"
VS_RESOURCE = "virtualservices.networking.istio.io"
PA_RESOURCE = "peerauthentications.security.istio.io"
CONFLICT = ('Error from server (Conflict): Operation cannot be fulfilled on destinationrules.networking.istio.io '
            '"my-app": the object has been modified; please apply your changes to the latest version and try again\n')
FORBIDDEN = ('Error from server (Forbidden): virtualservices.networking.istio.io "my-app" is forbidden: User '
             '"dev" cannot update resource "virtualservices" in API group "networking.istio.io" in the namespace '
             '"my-app"\n')


def service(name: str = "my-app", ns: str = NS, selector: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "5"},
            "spec": {"selector": {"app": name} if selector is None else selector, "ports": [{"port": 80}]}}


def version_pods(version: str, count: int = 1, *, app: str = "my-app", ready: bool = True, ns: str = NS) -> list[dict]:
    return [pod(f"{app}-{version}-{i}", ns, labels={"app": app, "version": version}, sidecar="container",
                owner=("ReplicaSet", f"{app}-{version}-5d9f8c7b6"), ready=ready)
            for i in range(count)]


def dr(name: str = "my-app", host: str = "my-app", *, subsets=None, policy=None, rv: str = "10",
       created: str = "2024-01-01T00:00:00Z", api: str = "networking.istio.io/v1", ns: str = NS, **meta) -> dict:
    spec: dict = {"host": host}
    if subsets is not None:
        spec["subsets"] = subsets
    if policy is not None:
        spec["trafficPolicy"] = policy
    return {"apiVersion": api, "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "creationTimestamp": created,
                         "uid": f"uid-{name}", **meta},
            "spec": spec}


def vs(name: str = "my-app", hosts=("my-app",), http=None, *, rv: str = "20", annotations=None,
       created: str = "2024-01-01T00:00:00Z", ns: str = NS, **spec) -> dict:
    metadata = {"name": name, "namespace": ns, "resourceVersion": rv, "creationTimestamp": created,
                "uid": f"uid-vs-{name}"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata,
            "spec": {"hosts": list(hosts), "http": http if http is not None else [], **spec}}


def subset(name: str, version: str, **extra) -> dict:
    return {"name": name, "labels": {"version": version}, **extra}


def weighted(*pairs, host: str = "my-app") -> dict:
    return {"route": [{"destination": {"host": host, "subset": s}, "weight": w} for s, w in pairs]}


class Writes:
    """What the faked writes sent, in order: for `kubectl create -f -` the object, for
    `kubectl patch --type merge -p PATCH` the object the patch makes of the one it was
    registered against (its raw body in `patches`)."""

    def __init__(self):
        self.sent: list[dict] = []
        self.patches: list[dict] = []

    def patched(self, current: dict, resource_version: str | None):
        """A pytest-subprocess callback: apply the -p body to `current`, answer like the API server."""

        def callback(process):
            args = list(process.args)
            body = json.loads(args[args.index("-p") + 1])
            self.patches.append(body)
            base = {k: v for k, v in copy.deepcopy(current).items() if k != "status"}
            self.sent.append(apply_merge_patch(base, body))
            if resource_version is not None:
                back = copy.deepcopy(self.sent[-1])
                back["metadata"]["resourceVersion"] = resource_version
                text = json.dumps(back)
                process.stdout.write(text if isinstance(process.stdout, io.StringIO) else text.encode())

        return callback

    def echo(self, resource_version: str | None):
        """Record what is sent; answer with it (as the API server does) unless the write fails."""

        def record(data):
            text = data.decode() if isinstance(data, bytes) else data
            obj = json.loads(text)
            self.sent.append(obj)
            if resource_version is None:
                return None
            back = copy.deepcopy(obj)
            back["metadata"]["resourceVersion"] = resource_version
            return {"stdout": json.dumps(back)}

        return record

    def kinds(self) -> list[str]:
        return [o["kind"] for o in self.sent]


def register_write(fp, writes: Writes, verb: str = "replace", *, rv: str = "99", returncode: int = 0,
                   stderr: str = "", prefix=()):
    fp.register(["kubectl", *prefix, verb, "-f", "-", "-o", "json"],
                stdin_callable=writes.echo(rv if returncode == 0 else None),
                returncode=returncode, stderr=stderr)


def patch_args(resource: str, name: str, ns: str = NS) -> list:
    """`kubectl patch` of one object, the -p body left open (checked through Writes)."""
    return ["patch", resource, name, "-n", ns, "--type", "merge", "-p", PATCH_BODY, "-o", "json"]


def register_patch(fp, writes: Writes, current: dict, *, rv: str = "99", returncode: int = 0, stderr: str = "",
                   prefix=()):
    resource = {"DestinationRule": DR_RESOURCE, "VirtualService": VS_RESOURCE,
                "PeerAuthentication": PA_RESOURCE}[current["kind"]]
    meta = current["metadata"]
    args = ["kubectl", *prefix, *patch_args(resource, meta["name"], meta["namespace"])]
    args[args.index(PATCH_BODY)] = fp.any(min=1, max=1)
    fp.register(args, callback=writes.patched(current, rv if returncode == 0 else None), returncode=returncode,
                stderr=stderr)


def register_service_read(fp, objects, occurrences: int = 1, prefix=()):
    fp.register(["kubectl", *prefix, *SERVICE_READ], stdout=kube_list(*objects), occurrences=occurrences)


def calls(fp) -> list[list[str]]:
    """The calls made (but the permission check), with a patch's body shown as PATCH_BODY."""
    out = []
    for call in calls_made(fp):
        if is_access_review(call):
            continue  # the permission check before writes (tested on its own)
        if "-p" in call:
            call[call.index("-p") + 1] = PATCH_BODY
        out.append(call)
    return out
