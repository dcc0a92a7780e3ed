"""One read of the cluster (or of manifests), as plain data checks and plans read.

`read_cluster` scoped to one namespace reads by scope, each part allowed to
fail alone, so a developer with rights in their own namespace only still gets
everything they may see: one batched `kubectl get KIND,KIND,... -n NS -o json`
for the namespaced kinds (and nodes, when asked for), `kubectl get namespace
NS`, and the mesh-wide policies in Istio's root namespace. A kind the user may
not list is dropped from what kubectl returned and remembered
(`Snapshot.denied`), so a check can say which permission it lacked instead of
guessing. Without a namespace it is one batched read of all namespaces.
`Snapshot` indexes what came back once: objects by kind and namespace, pods
by namespace and label, so no check has to loop over every pod for every
subset or route.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.access import Denied, forbidden_lines, parse_forbidden
from kubectl_mesh.mesh import (
    WORKLOAD_KINDS,
    labels_of,
    meta,
    name_of,
    selector_matches,
)

ROOT_NAMESPACE = "istio-system"
CLUSTER_DOMAIN = "cluster.local"

# kind -> the resource name kubectl is asked for (fully qualified so that a
# same-named CRD of another group is never picked up by mistake).
CORE_RESOURCES = {
    "Namespace": "namespaces",
    "Pod": "pods",
    "Service": "services",
    "Deployment": "deployments.apps",
    "StatefulSet": "statefulsets.apps",
    "DaemonSet": "daemonsets.apps",
    "ReplicaSet": "replicasets.apps",
    "Node": "nodes",
}
ISTIO_RESOURCES = {
    "VirtualService": "virtualservices.networking.istio.io",
    "DestinationRule": "destinationrules.networking.istio.io",
    "ServiceEntry": "serviceentries.networking.istio.io",
    "Gateway": "gateways.networking.istio.io",
    "Sidecar": "sidecars.networking.istio.io",
    "PeerAuthentication": "peerauthentications.security.istio.io",
    "AuthorizationPolicy": "authorizationpolicies.security.istio.io",
}
CLUSTER_SCOPED = {"Namespace", "Node", "CustomResourceDefinition"}
REGION, ZONE, SUBZONE = "topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"
HOSTNAME = "kubernetes.io/hostname"
# The node's older labels, read when the GA ones are missing (as Istio reads a node's locality).
BETA_REGION, BETA_ZONE = "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone"
# Labels an endpoint gets from its pod's node, as Istio's endpoint builder adds them
# (label.AugmentLabels): a subset may select on them though the pod does not carry them.
TOPOLOGY_LABELS = (REGION, ZONE, SUBZONE, HOSTNAME)
_TOPOLOGY_SET = frozenset(TOPOLOGY_LABELS)


def endpoint_labels(pod_labels: dict, node_name: str | None, node_labels: dict | None) -> dict:
    """A pod's labels as Istio's endpoint carries them: the node's locality (region,
    zone, subzone; the GA label, else the older failure-domain one) and hostname
    added over the pod's own. An empty locality value is never copied, so a subset
    selecting `region: ""` does not match through a node labelled `region: ""`."""
    out = dict(pod_labels)
    if node_labels:
        region = node_labels.get(REGION) or node_labels.get(BETA_REGION)
        zone = node_labels.get(ZONE) or node_labels.get(BETA_ZONE)
        for key, value in ((REGION, region), (ZONE, zone), (SUBZONE, node_labels.get(SUBZONE))):
            if value:
                out[key] = value
    if node_name:
        out[HOSTNAME] = node_name
    return out
DEFAULT_KINDS = ("Namespace", "Pod", "Service", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@dataclass(frozen=True)
class WorkloadRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def restartable(self) -> bool:
        return self.kind in WORKLOAD_KINDS


class Snapshot:
    """Objects of one read, indexed once."""

    def __init__(
        self,
        objects: Iterable[dict],
        *,
        istio_crds: bool | None = None,
        source: str = "cluster",
        scope: str | None = None,
        root_namespace: str = ROOT_NAMESPACE,
    ):
        self.source = source
        self.scope = scope  # the namespace read, or None for all namespaces
        # (kind, namespace or None) -> the permission the read lacked for it.
        self.denied: dict[tuple[str, str | None], Denied] = {}
        self.istio_crds = istio_crds
        self.root_namespace = root_namespace
        self._by_kind: dict[str, list[dict]] = defaultdict(list)
        self._by_key: dict[tuple[str, str, str], dict] = {}
        # Namespaces that namespaced objects are in, and pods by namespace, noted as
        # objects are added.
        self._object_namespaces: set[str] = set()
        self._pods_by_ns: dict[str, list[dict]] = defaultdict(list)
        self._add_all(objects)
        # kind -> namespace -> its objects, built per kind on the first of_kind(kind, namespace).
        self._by_kind_ns: dict[str, dict[str, list[dict]]] = {}
        # namespace -> label key -> value -> positions of the pods carrying key=value
        # in pods(namespace); a key is indexed in a namespace when first selected on.
        self._pod_index: dict[str, dict[str, dict[object, set[int]]]] = {}
        self._workload_cache: dict[int, WorkloadRef | None] = {}
        # (namespace, kind, name) of a controller owner -> its workload: the pods of a
        # ReplicaSet resolve it once, and share one WorkloadRef.
        self._owner_cache: dict[tuple[str, str, str], WorkloadRef | None] = {}

    def _add_all(self, objects: Iterable[dict]) -> None:
        # Runs once per object of the read (tens of thousands on a large cluster):
        # one loop with its indexes in locals and metadata looked up once per object.
        by_kind, by_key, namespaces, pods = self._by_kind, self._by_key, self._object_namespaces, self._pods_by_ns
        for obj in objects:
            kind = obj.get("kind")
            metadata = obj.get("metadata")
            if not kind or not isinstance(metadata, dict):
                continue
            if kind in CLUSTER_SCOPED:
                namespace = metadata.get("namespace", "")
            else:
                namespace = metadata.get("namespace")
                if not namespace:
                    # Manifests without a namespace land in "default", as kubectl apply and
                    # istioctl analyze treat them.
                    namespace = metadata["namespace"] = "default"
                namespaces.add(namespace)
                if kind == "Pod":
                    pods[namespace].append(obj)
            by_kind[kind].append(obj)
            by_key[(kind, namespace, metadata.get("name", ""))] = obj

    # -- plain lookups ------------------------------------------------------------
    def of_kind(self, kind: str, namespace: str | None = None) -> list[dict]:
        items = self._by_kind.get(kind, [])
        if namespace is None:
            return items
        # Checks ask per namespace, namespace after namespace: group the kind's objects
        # once instead of scanning all of them on every call. A new list, as before.
        by_ns = self._by_kind_ns.get(kind)
        if by_ns is None:
            by_ns = self._by_kind_ns[kind] = defaultdict(list)
            for o in items:
                by_ns[meta(o).get("namespace")].append(o)
        return list(by_ns.get(namespace, ()))

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        return self._by_key.get((kind, "" if kind in CLUSTER_SCOPED else namespace or "", name))

    @property
    def kinds(self) -> set[str]:
        return set(self._by_kind)

    def namespace(self, name: str) -> dict | None:
        return self.get("Namespace", None, name)

    def require_namespace(self, name: str) -> dict:
        """The Namespace object; NotFound (exit 1) when the cluster has none of that name,
        Forbidden (exit 4) when the user may not read it."""
        found = self.namespace(name)
        if found is None:
            denied = self.denial("Namespace", name)
            if denied is not None:
                raise errors.Forbidden(f"namespace {name} is not readable (needs {denied.permission})")
            raise errors.NotFound(f'namespace "{name}" not found')
        return found

    def ensure_namespace(self, name: str) -> None:
        """NotFound (exit 1) when the namespace does not exist; nothing when it does or
        when the user may not read it (the checks that need it say so)."""
        if self.namespace(name) is None and self.denial("Namespace", name) is None:
            raise errors.NotFound(f'namespace "{name}" not found')

    def denial(self, kind: str, namespace: str | None = None) -> Denied | None:
        """Why objects of `kind` in `namespace` are missing from the read, if the user may
        not read them (a cluster-wide denial covers every namespace)."""
        if kind in CLUSTER_SCOPED and kind != "Namespace":
            return self.denied.get((kind, None))
        return self.denied.get((kind, namespace)) or self.denied.get((kind, None))

    def readable(self, kind: str, namespace: str | None = None) -> bool:
        return self.denial(kind, namespace) is None

    def namespace_names(self) -> list[str]:
        """Namespaces with a Namespace object or any object in them."""
        names = {name_of(ns) for ns in self.of_kind("Namespace")}
        names.update(self._object_namespaces)
        return sorted(names)

    # -- pods ---------------------------------------------------------------------
    def pods(self, namespace: str | None = None) -> list[dict]:
        if namespace is None:
            return self._by_kind.get("Pod", [])
        return self._pods_by_ns.get(namespace, [])

    def _label_index(self, namespace: str, key: str) -> dict[object, set[int]]:
        """value -> positions in pods(namespace) of the pods whose label `key` has it.

        Selectors use a few label keys (app, version, ...) of the many that pods
        carry, so a key is indexed in a namespace on the first selection that needs
        it, rather than every label of every pod up front."""
        by_key = self._pod_index.setdefault(namespace, {})
        index = by_key.get(key)
        if index is None:
            index = by_key[key] = defaultdict(set)
            for position, pod in enumerate(self.pods(namespace)):
                labels = labels_of(pod)
                if key in labels:
                    index[labels[key]].add(position)
        return index

    def select_pods(self, namespace: str, labels: dict, *, with_node_labels: bool = False) -> list[dict]:
        """Pods in `namespace` carrying every label in `labels`.

        With `with_node_labels`, topology labels in `labels` are matched against
        the pod's endpoint labels (endpoint_labels), as Istio matches locality subsets.
        """
        pods = self.pods(namespace)
        if not labels:
            return list(pods)
        pod_labels = labels
        node_wanted = {}
        if with_node_labels and not _TOPOLOGY_SET.isdisjoint(labels):
            pod_labels = dict(labels)
            node_wanted = {k: pod_labels.pop(k) for k in list(pod_labels) if k in TOPOLOGY_LABELS}
        if pod_labels:
            sets = sorted((self._label_index(namespace, k).get(v, set()) for k, v in pod_labels.items()), key=len)
            positions = set(sets[0]).intersection(*sets[1:]) if sets else set()
            candidates = [pods[i] for i in sorted(positions)]
        else:
            candidates = list(pods)
        if not node_wanted:
            return candidates
        result = []
        for pod in candidates:
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = self.get("Node", None, node_name) if node_name else None
            carried = endpoint_labels(labels_of(pod), node_name, labels_of(node) if node else None)
            if all(carried.get(k) == v for k, v in node_wanted.items()):
                result.append(pod)
        return result

    def select_pods_by_selector(self, namespace: str, selector: dict | None) -> list[dict]:
        """Pods matched by a LabelSelector (matchLabels narrowed by the index first)."""
        if not selector:
            return []
        candidates = self.select_pods(namespace, selector.get("matchLabels") or {})
        if not selector.get("matchExpressions"):
            return candidates
        return [p for p in candidates if selector_matches(selector, labels_of(p))]

    # -- workloads ----------------------------------------------------------------
    def workloads(self, namespace: str | None = None) -> list[dict]:
        result = []
        for kind in WORKLOAD_KINDS:
            result.extend(self.of_kind(kind, namespace))
        return result

    def workload_of(self, pod: dict) -> WorkloadRef | None:
        """The Deployment, StatefulSet or DaemonSet (or other top owner) of a pod."""
        key = id(pod)
        if key not in self._workload_cache:
            self._workload_cache[key] = self._resolve_workload(pod)
        return self._workload_cache[key]

    def _resolve_workload(self, pod: dict) -> WorkloadRef | None:
        ns = meta(pod).get("namespace", "default")
        owners = meta(pod).get("ownerReferences") or []
        owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
        if owner:
            kind, name = owner.get("kind", ""), owner.get("name", "")
            key = (ns, kind, name)
            if key not in self._owner_cache:
                self._owner_cache[key] = self._owner_workload(ns, kind, name)
            found = self._owner_cache[key]
            if found is not None:
                return found
            # A ReplicaSet that the snapshot does not hold, or that has no owner.
            template_hash = labels_of(pod).get("pod-template-hash")
            if self.get("ReplicaSet", ns, name) is None and template_hash and name.endswith("-" + template_hash):
                return WorkloadRef("Deployment", ns, name[: -len(template_hash) - 1])
            return WorkloadRef("ReplicaSet", ns, name)
        # Manifests carry no owner references: match the workloads' selectors.
        labels = labels_of(pod)
        for workload in self.workloads(ns):
            if selector_matches((workload.get("spec") or {}).get("selector"), labels):
                return WorkloadRef(workload["kind"], ns, name_of(workload))
        return None

    def _owner_workload(self, ns: str, kind: str, name: str) -> WorkloadRef | None:
        """The workload of pods whose controller is kind/name; None for a ReplicaSet
        without an owner in the snapshot (then the pod's template hash tells)."""
        if kind == "ReplicaSet":
            rs = self.get("ReplicaSet", ns, name)
            rs_owners = (meta(rs).get("ownerReferences") or []) if rs else []
            if rs_owners:
                return WorkloadRef(rs_owners[0].get("kind", ""), ns, rs_owners[0].get("name", ""))
            return None
        if kind == "Job":
            job = self.get("Job", ns, name)
            job_owners = (meta(job).get("ownerReferences") or []) if job else []
            if job_owners:
                return WorkloadRef(job_owners[0].get("kind", ""), ns, job_owners[0].get("name", ""))
        return WorkloadRef(kind, ns, name)

    def pods_of(self, workload: dict) -> list[dict]:
        ns = meta(workload).get("namespace", "default")
        ref = WorkloadRef(workload.get("kind", ""), ns, name_of(workload))
        selector = (workload.get("spec") or {}).get("selector")
        candidates = self.select_pods_by_selector(ns, selector) if selector else self.pods(ns)
        return [p for p in candidates if self.workload_of(p) == ref]

    # -- services and hosts ---------------------------------------------------------
    def service_for_host(self, host: str, namespace: str) -> dict | None:
        """The Kubernetes Service a (possibly short) host names, as Istio resolves it."""
        fqdn = resolve_host(host, namespace)
        suffix = f".svc.{CLUSTER_DOMAIN}"
        if not fqdn.endswith(suffix):
            return None
        parts = fqdn[: -len(suffix)].split(".")
        if len(parts) != 2:
            return None
        return self.get("Service", parts[1], parts[0])


def resolve_host(host: str, namespace: str) -> str:
    """Istio's ResolveShortnameToFQDN: a name without dots is expanded in the
    config's namespace; anything with a dot is taken as written."""
    if not host or host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def service_fqdn(service: dict) -> str:
    return f"{name_of(service)}.{meta(service).get('namespace', 'default')}.svc.{CLUSTER_DOMAIN}"


# -- reading ----------------------------------------------------------------------
def flatten(document) -> list[dict]:
    """Objects in a kubectl JSON document or manifest: `List` kinds unpacked."""
    if not isinstance(document, dict):
        return []
    if not (document.get("kind", "").endswith("List") and isinstance(document.get("items"), list)):
        return [document]
    out = []
    for item in document["items"]:
        # A List of a large cluster holds tens of thousands of objects: those are
        # taken as they are; only a nested List costs a recursive call.
        if not isinstance(item, dict):
            continue
        if item.get("kind", "").endswith("List") and isinstance(item.get("items"), list):
            out.extend(flatten(item))
        else:
            out.append(item)
    return out


_KIND_OF_RESOURCE = {resource: kind for kind, resource in {**CORE_RESOURCES, **ISTIO_RESOURCES}.items()}


def _partial_get(runner, resources: list[str], scope: list[str], checks_only: bool = False) -> tuple[list[dict], dict]:
    """`kubectl get RESOURCES SCOPE -o json`, keeping what kubectl printed when some kinds
    were refused: (objects, {(kind, namespace or None): Denied}). Any other failure raises."""
    try:
        return flatten(runner.kubectl_json("get", ",".join(resources), *scope, checks_only=checks_only)), {}
    except errors.Forbidden as exc:
        lines = forbidden_lines(getattr(exc, "stderr", ""))
        denials = [parse_forbidden(line) for line in lines]
        if not lines or any(d is None or d.resource not in _KIND_OF_RESOURCE for d in denials):
            raise
        output = getattr(exc, "output", "")
        try:
            document = json.loads(output) if output.strip() else {}
        except json.JSONDecodeError:
            raise exc from None
        denied = {(_KIND_OF_RESOURCE[d.resource], d.namespace): d for d in denials if d is not None}
        return flatten(document), denied


def read_cluster(
    runner,
    *,
    namespace: str | None,
    kinds: Iterable[str] = DEFAULT_KINDS,
    istio: bool = True,
    root_policies: bool = True,
    root_namespace: str = ROOT_NAMESPACE,
    checks_only: bool = False,
) -> Snapshot:
    """Read `kinds` (and Istio's kinds) of `namespace`; `namespace=None` reads all namespaces
    in one batched call, which fails as a whole when the user may not list them.
    `checks_only`: decode only the fields the checks read (kubectl_mesh.decode), for
    read-only commands.

    The Istio kinds are asked for in the same call; when the cluster does not
    know them (Istio's CRDs are not installed) the call is repeated without
    them, and the snapshot says Istio's CRDs are missing.
    """
    kinds = list(kinds)
    scoped = namespace is not None
    # One namespace: its Namespace object is read by name (a RoleBinding in it may allow that),
    # never by listing every namespace (cluster-scoped).
    core = [CORE_RESOURCES[k] for k in kinds if k in CORE_RESOURCES and not (scoped and k == "Namespace")]
    istio_kinds = [ISTIO_RESOURCES[k] for k in ISTIO_RESOURCES] if istio else []
    scope = ["-A"] if namespace is None else ["-n", namespace]
    istio_crds: bool | None = None
    denied: dict = {}
    try:
        if scoped:
            objects, denied = _partial_get(runner, core + istio_kinds, scope, checks_only)
        else:
            objects = flatten(runner.kubectl_json("get", ",".join(core + istio_kinds), *scope,
                                                  checks_only=checks_only))
        istio_crds = True if istio_kinds else None
    except errors.NotFound as exc:
        if not istio_kinds or "resource type" not in exc.message and "could not find" not in exc.message:
            raise
        if scoped:
            objects, denied = _partial_get(runner, core, scope, checks_only)
        else:
            objects = flatten(runner.kubectl_json("get", ",".join(core), *scope, checks_only=checks_only))
        istio_crds = False
    if scoped and "Namespace" in kinds:
        try:
            objects.append(runner.kubectl_json("get", "namespace", namespace))
        except errors.NotFound:
            pass  # no such namespace: the snapshot has none, require_namespace says so
        except errors.Forbidden as exc:
            denial = parse_forbidden(getattr(exc, "stderr", "") or exc.message)
            denied[("Namespace", namespace)] = denial or Denied("get", "namespaces", namespace, namespace)
    if istio_crds and root_policies and scoped and namespace != root_namespace:
        # The mesh-wide PeerAuthentication lives in the root namespace; a namespace-scoped
        # read does not see it. One small extra call, not one per object.
        try:
            root, root_denied = _partial_get(runner, [ISTIO_RESOURCES["PeerAuthentication"]], ["-n", root_namespace],
                                             checks_only)
            objects += root
            denied.update(root_denied)
        except errors.NotFound:
            pass
    snapshot = Snapshot(objects, istio_crds=istio_crds, scope=namespace, root_namespace=root_namespace)
    snapshot.denied = denied
    return snapshot
