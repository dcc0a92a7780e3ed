"""`kubectl mesh version`: the plugin's, kubectl's, the cluster's and Istio's versions, with skew.

As `istioctl version` shows them: each control plane (istiod Deployment: its
revision and the version it runs, from its pods' image, else Istio's
`app.kubernetes.io/version` label, else the Deployment's image) and the data
plane as proxy versions by count (the istio-proxy image of every meshed pod).
Skew is flagged: a proxy version no control plane runs (its pods were injected
by an older or newer istiod and keep that proxy until restarted), several
control-plane versions at once, and kubectl more than one minor version away
from the cluster (kubectl's supported skew).

Three reads: `kubectl version -o json`, the istiod Deployments and pods of
every namespace in one call, and the pods' proxy images (all namespaces, or
the one given; a user who may not list pods everywhere gets their namespace).
"""

from __future__ import annotations

import json
import re
from collections import Counter

from kubectl_mesh import __version__, english, errors, mesh
from kubectl_mesh.report import PASS, SKIP, WARN, Check

CATEGORY = "version"
ISTIOD_SELECTOR = "app=istiod"
VERSION_LABELS = ("app.kubernetes.io/version", "operator.istio.io/version")
# Image tag variants that name the same Istio release.
_VARIANT = re.compile(r"-(distroless|debug)$")
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")
PROXY_IMAGES = ('jsonpath={range .items[*]}{.metadata.namespace}{"\\t"}'
                '{.metadata.annotations.sidecar\\.istio\\.io/status}{"\\t"}'
                '{range .spec.containers[?(@.name=="istio-proxy")]}{.image}{" "}{end}'
                '{range .spec.initContainers[?(@.name=="istio-proxy")]}{.image}{" "}{end}{"\\n"}{end}')


def image_version(image: str | None) -> str | None:
    """`docker.io/istio/proxyv2:1.32.0` -> `1.32.0` (`-distroless` dropped); None for a digest,
    no tag, or a tag that is not a release (`latest`)."""
    if not image or "@" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return None
    tag = _VARIANT.sub("", name.rsplit(":", 1)[1])
    return tag if _RELEASE.match(tag) else None


def minor_of(version: str | None) -> tuple[int, int] | None:
    match = _RELEASE.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# -- kubectl and the cluster ---------------------------------------------------------------------
def kubernetes_versions(document: dict) -> tuple[str | None, str | None]:
    """(kubectl's gitVersion, the API server's gitVersion) from `kubectl version -o json`."""
    client = (document.get("clientVersion") or {}).get("gitVersion")
    server = (document.get("serverVersion") or {}).get("gitVersion")
    return client, server


# -- control planes ------------------------------------------------------------------------------
def control_planes(objects: list[dict]) -> list[dict]:
    """One entry per istiod Deployment: {namespace, name, revision, version, versions, ready}.
    `versions` lists what its pods run (several while it rolls out); `version` is the one
    to compare proxies against."""
    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    pods = [o for o in objects if o.get("kind") == "Pod" and not mesh.pod_terminating(o)]
    planes = []
    for deployment in sorted(deployments, key=lambda d: (mesh.namespace_of(d), mesh.name_of(d))):
        namespace = mesh.namespace_of(deployment)
        labels = mesh.labels_of(deployment)
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        own = [p for p in pods if mesh.namespace_of(p) == namespace and selector
               and all(mesh.labels_of(p).get(k) == v for k, v in selector.items())]
        running = sorted({v for p in own for v in [_discovery_version(p)] if v})
        declared = next((labels[k] for k in VERSION_LABELS if labels.get(k)), None) or _discovery_version(deployment)
        status = deployment.get("status") or {}
        planes.append({
            "namespace": namespace,
            "name": mesh.name_of(deployment),
            "revision": labels.get(mesh.REVISION_LABEL) or "default",
            "version": running[-1] if len(running) == 1 else declared or (running[-1] if running else None),
            "versions": running or ([declared] if declared else []),
            "ready": f"{status.get('readyReplicas') or 0}/{(deployment.get('spec') or {}).get('replicas', 1)}",
        })
    return planes


def _discovery_version(obj: dict) -> str | None:
    containers = mesh.pod_spec(obj).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == "discovery"), containers[0] if containers else None)
    return image_version((chosen or {}).get("image"))


# -- the data plane ------------------------------------------------------------------------------
def data_plane(lines: str) -> list[dict]:
    """Proxy versions by count from the PROXY_IMAGES jsonpath output: [{version, proxies,
    revisions, namespaces}], the most used first; `version` None for an image without a
    release tag."""
    counts: Counter = Counter()
    revisions: dict[str | None, set[str]] = {}
    namespaces: dict[str | None, set[str]] = {}
    for line in lines.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip():
            continue
        namespace, status, images = parts[0], parts[1], parts[2].split()
        version = image_version(images[0])
        counts[version] += 1
        revisions.setdefault(version, set()).add(_injected_revision(status))
        namespaces.setdefault(version, set()).add(namespace)
    return [{"version": version, "proxies": n, "revisions": sorted(revisions[version]),
             "namespaces": sorted(namespaces[version])}
            for version, n in sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))]


def _injected_revision(status: str) -> str:
    try:
        revision = json.loads(status).get("revision") if status else None
    except (ValueError, AttributeError):
        revision = None
    return revision if isinstance(revision, str) and revision else "default"


# -- skew ----------------------------------------------------------------------------------------
def skew_checks(kubectl: str | None, cluster: str | None, planes: list[dict] | None,
                proxies: list[dict] | None) -> list[Check]:
    checks: list[Check] = []
    client, server = minor_of(kubectl), minor_of(cluster)
    if client and server:
        apart = abs(client[1] - server[1]) if client[0] == server[0] else 99
        if apart > 1:
            checks.append(Check("kubectl-skew", CATEGORY, "kubectl", WARN,
                                f"kubectl {kubectl} is {apart} minor versions from the cluster's {cluster}; "
                                "kubectl supports one minor version of skew",
                                f"use a kubectl within one minor version of {cluster}"))
        else:
            checks.append(Check("kubectl-skew", CATEGORY, "kubectl", PASS,
                                f"kubectl {kubectl} and the cluster's {cluster} are within one minor version"))
    if planes is None or proxies is None:
        return checks
    running = {p["version"] for p in planes if p["version"]}
    if len(running) > 1:
        listed = ", ".join(f"{p['version']} (revision {p['revision']})" for p in planes)
        checks.append(Check("control-plane-versions", CATEGORY, "istiod", PASS,
                            f"{len(running)} control-plane versions run side by side: {listed}"
                            " (a revision-based upgrade in progress)"))
    behind = [p for p in proxies if p["version"] not in running] if running else []
    if behind:
        count = sum(p["proxies"] for p in behind)
        shown = ", ".join(f"{p['version'] or 'unknown'} ({_proxies(p['proxies'])})" for p in behind)
        where = sorted({ns for p in behind for ns in p["namespaces"]})
        checks.append(Check(
            "data-plane-skew", CATEGORY, "data-plane", WARN,
            f"{_proxies(count)} {english.agree(count, 'runs')} a version no control plane runs: {shown}; "
            "control plane "
            f"{', '.join(sorted(running))}",
            "restart their workloads so the injector gives them the current proxy: "
            + "; ".join(f"kubectl rollout restart deployment -n {ns}" for ns in where[:5])
            + (f" (and {len(where) - 5} more namespaces)" if len(where) > 5 else ""),
            {"versions": [p["version"] for p in behind], "namespaces": where}))
    elif proxies and running:
        checks.append(Check("data-plane-skew", CATEGORY, "data-plane", PASS,
                            f"every proxy runs a control-plane version ({', '.join(sorted(running))})"))
    return checks


def _proxies(n: int) -> str:
    return f"{n} prox{'y' if n == 1 else 'ies'}"


# -- reading ---------------------------------------------------------------------------------------
def read(runner, *, namespace: str | None, client_only: bool = False):
    """({plugin, kubectl, cluster, controlPlanes, dataPlane, dataPlaneScope}, checks, error):
    what could not be read is None, with a skip check saying why; `error` is the environment
    problem that kept the cluster out of reach (the client versions are still there)."""
    checks: list[Check] = []
    doc: dict = {"plugin": __version__, "kubectl": None, "cluster": None, "controlPlanes": None,
                 "dataPlane": None, "dataPlaneScope": None}
    if not client_only:
        try:
            doc["kubectl"], doc["cluster"] = kubernetes_versions(runner.kubectl_json("version", timeout=15))
        except errors.EnvironmentProblem as exc:
            doc["kubectl"], _ = kubernetes_versions(runner.kubectl_json("version", "--client", timeout=10))
            return doc, checks, exc
    else:
        doc["kubectl"], _ = kubernetes_versions(runner.kubectl_json("version", "--client", timeout=10))
        return doc, checks, None
    try:
        found = runner.kubectl_json("get", "deployments.apps,pods", "-A", "-l", ISTIOD_SELECTOR, timeout=15)
        doc["controlPlanes"] = control_planes(found.get("items") or [])
    except errors.Forbidden:
        checks.append(Check("control-plane", CATEGORY, "istiod", SKIP,
                            "control plane not read: listing istiod's deployments and pods in all namespaces is "
                            "forbidden (needs list deployments.apps and pods in istio-system)",
                            data={"verb": "list", "resource": "deployments.apps", "namespace": None}))
    if doc["controlPlanes"] == []:
        checks.append(Check("control-plane", CATEGORY, "istiod", SKIP,
                            "no Istio control plane found (no istiod Deployment with label app=istiod)"))
    scope_args, doc["dataPlaneScope"] = (["-n", namespace], namespace) if namespace else (["-A"], "all namespaces")
    try:
        doc["dataPlane"] = data_plane(runner.kubectl("get", "pods", *scope_args, "-o", PROXY_IMAGES, timeout=60))
    except errors.Forbidden:
        if namespace:
            raise
        checks.append(Check("data-plane", CATEGORY, "data-plane", SKIP,
                            "data plane not read: listing pods in all namespaces is forbidden "
                            "(give -n NAMESPACE for the proxies of one namespace)",
                            data={"verb": "list", "resource": "pods", "namespace": None}))
    checks += skew_checks(doc["kubectl"], doc["cluster"], doc["controlPlanes"], doc["dataPlane"])
    return doc, checks, None


def text_lines(doc: dict) -> list[str]:
    """What `version` prints, as `istioctl version` lays it out."""
    lines = [f"plugin version:        {doc['plugin']}",
             f"kubectl version:       {doc['kubectl'] or 'unknown'}"]
    if doc.get("cluster") is not None:
        lines.append(f"cluster version:       {doc['cluster']}")
    for plane in doc.get("controlPlanes") or []:
        lines.append(f"control plane version: {plane['version'] or 'unknown'} (revision {plane['revision']}, "
                     f"{plane['namespace']}/{plane['name']}, {plane['ready']} ready)")
    proxies = doc.get("dataPlane")
    if proxies is not None:
        shown = ", ".join(f"{p['version'] or 'unknown'} ({_proxies(p['proxies'])})" for p in proxies)
        lines.append(f"data plane version:    {shown or 'no proxies'} ({doc['dataPlaneScope']})")
    return lines
