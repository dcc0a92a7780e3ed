"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``'s default output.

Columns follow the API server's printers for built-in kinds and a CRD's
``additionalPrinterColumns`` for custom resources.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .registry import ResourceType
from .selectors import selector_to_string

NAME_DESC = ("Name must be unique within a namespace. Is required when creating resources, although some "
             "resources may allow a client to request the generation of an appropriate name automatically.")
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object was created.")


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        created = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    return human_duration(time.time() - created)


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "", desc: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": desc or name, "priority": priority}


NAME_COL = _col("Name", fmt="name", desc=NAME_DESC)
AGE_COL = _col("Age", desc=AGE_DESC)


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    tmpl = spec.get("template") or {}
    return (tmpl.get("spec") or {}).get("containers") or []


def _names(obj: dict) -> str:
    return ",".join(c.get("name", "") for c in _containers(obj))


def _images(obj: dict) -> str:
    return ",".join(c.get("image", "") for c in _containers(obj))


def pod_ready_and_status(pod: dict[str, Any]) -> tuple[str, str, int]:
    """(READY, STATUS, RESTARTS) the way kubectl's pod printer computes them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = 0
    restarts = 0
    reason = status.get("reason") or status.get("phase") or "Unknown"
    init_specs = spec.get("initContainers") or []
    init_statuses = {s.get("name"): s for s in status.get("initContainerStatuses") or []}
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    initializing = False
    for i, c in enumerate(init_specs):
        st = init_statuses.get(c.get("name")) or {}
        restarts += st.get("restartCount", 0)
        if c.get("name") in sidecars:
            total += 1
            if st.get("ready"):
                ready += 1
            if (st.get("state") or {}).get("running") and st.get("started"):
                continue
        state = st.get("state") or {}
        if state.get("terminated", {}).get("exitCode") == 0 and c.get("name") not in sidecars:
            continue
        if "terminated" in state:
            t = state["terminated"]
            reason = "Init:" + (t.get("reason") or f"ExitCode:{t.get('exitCode')}")
        elif state.get("waiting", {}).get("reason") and state["waiting"]["reason"] != "PodInitializing":
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing:
        for st in status.get("containerStatuses") or []:
            restarts += st.get("restartCount", 0)
            state = st.get("state") or {}
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated", {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("running") and st.get("ready"):
                ready += 1
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return f"{ready}/{total}", reason, restarts


def _pod_row(o: dict) -> list:
    ready, status, restarts = pod_ready_and_status(o)
    st = o.get("status") or {}
    return [o["metadata"]["name"], ready, status, restarts, age(o["metadata"].get("creationTimestamp")),
            st.get("podIP") or "<none>", (o.get("spec") or {}).get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>", "<none>"]


def _ports(svc: dict) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        s = str(p.get("port"))
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _endpoints(ep: dict) -> str:
    addrs = []
    for subset in ep.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for a in subset.get("addresses") or []:
            for p in ports:
                addrs.append(f"{a['ip']}:{p}" if p else a["ip"])
    if not addrs:
        return "<none>"
    if len(addrs) > 3:
        return ",".join(addrs[:3]) + f" + {len(addrs) - 3} more..."
    return ",".join(addrs)


def _node_status(n: dict) -> str:
    for c in (n.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return "Ready" if c.get("status") == "True" else "NotReady"
    return "Unknown"


def _node_roles(n: dict) -> str:
    roles = [k.split("/", 1)[1] for k in (n["metadata"].get("labels") or {})
             if k.startswith("node-role.kubernetes.io/")]
    return ",".join(sorted(roles)) or "<none>"


def _node_ip(n: dict, kind: str) -> str:
    for a in (n.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return a["address"]
    return "<none>"


Printer = tuple[list[dict[str, Any]], Callable[[dict], list]]


def _subjects(o: dict, kind: str) -> str:
    names = [s.get("name", "") if kind != "ServiceAccount" else f"{s.get('namespace', '')}/{s.get('name', '')}"
             for s in o.get("subjects") or [] if s.get("kind") == kind]
    return ", ".join(names)


_BINDING: Printer = (
    [NAME_COL, _col("Role"), AGE_COL, _col("Users", priority=1), _col("Groups", priority=1),
     _col("ServiceAccounts", priority=1)],
    lambda o: [o["metadata"]["name"],
               f"{(o.get('roleRef') or {}).get('kind', '')}/{(o.get('roleRef') or {}).get('name', '')}",
               age(o["metadata"].get("creationTimestamp")), _subjects(o, "User"), _subjects(o, "Group"),
               _subjects(o, "ServiceAccount")],
)

BUILTIN: dict[str, Printer] = {
    "Pod": ([NAME_COL, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE_COL,
             _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
             _col("Readiness Gates", priority=1)], _pod_row),
    "Deployment": ([NAME_COL, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), AGE_COL,
                    _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                   lambda o: [o["metadata"]["name"],
                              f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                              (o.get("status") or {}).get("updatedReplicas", 0),
                              (o.get("status") or {}).get("availableReplicas", 0),
                              age(o["metadata"].get("creationTimestamp")), _names(o), _images(o),
                              selector_to_string((o.get("spec") or {}).get("selector"))]),
    "ReplicaSet": ([NAME_COL, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                    AGE_COL, _col("Containers", priority=1), _col("Images", priority=1),
                    _col("Selector", priority=1)],
                   lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("replicas", 1),
                              (o.get("status") or {}).get("replicas", 0),
                              (o.get("status") or {}).get("readyReplicas", 0),
                              age(o["metadata"].get("creationTimestamp")), _names(o), _images(o),
                              selector_to_string((o.get("spec") or {}).get("selector"))]),
    "StatefulSet": ([NAME_COL, _col("Ready"), AGE_COL, _col("Containers", priority=1), _col("Images", priority=1)],
                    lambda o: [o["metadata"]["name"],
                               f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                               age(o["metadata"].get("creationTimestamp")), _names(o), _images(o)]),
    "DaemonSet": ([NAME_COL, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                   _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"), AGE_COL,
                   _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                  lambda o: [o["metadata"]["name"],
                             (o.get("status") or {}).get("desiredNumberScheduled", 0),
                             (o.get("status") or {}).get("currentNumberScheduled", 0),
                             (o.get("status") or {}).get("numberReady", 0),
                             (o.get("status") or {}).get("updatedNumberScheduled", 0),
                             (o.get("status") or {}).get("numberAvailable", 0),
                             ",".join(f"{k}={v}" for k, v in sorted(
                                 (((o.get("spec") or {}).get("template") or {}).get("spec") or {})
                                 .get("nodeSelector", {}).items())) or "<none>",
                             age(o["metadata"].get("creationTimestamp")), _names(o), _images(o),
                             selector_to_string((o.get("spec") or {}).get("selector"))]),
    "Namespace": ([NAME_COL, _col("Status"), AGE_COL],
                  lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"),
                             age(o["metadata"].get("creationTimestamp"))]),
    "Service": ([NAME_COL, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE_COL,
                 _col("Selector", priority=1)],
                lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("type", "ClusterIP"),
                           (o.get("spec") or {}).get("clusterIP") or "<none>",
                           ",".join((o.get("spec") or {}).get("externalIPs") or []) or (
                               (o.get("spec") or {}).get("externalName") or "<none>"),
                           _ports(o), age(o["metadata"].get("creationTimestamp")),
                           ",".join(f"{k}={v}" for k, v in sorted(((o.get("spec") or {}).get("selector") or {}).items()))
                           or "<none>"]),
    "Endpoints": ([NAME_COL, _col("Endpoints"), AGE_COL],
                  lambda o: [o["metadata"]["name"], _endpoints(o), age(o["metadata"].get("creationTimestamp"))]),
    "ConfigMap": ([NAME_COL, _col("Data", "integer"), AGE_COL],
                  lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                             age(o["metadata"].get("creationTimestamp"))]),
    "Secret": ([NAME_COL, _col("Type"), _col("Data", "integer"), AGE_COL],
               lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}),
                          age(o["metadata"].get("creationTimestamp"))]),
    "ServiceAccount": ([NAME_COL, _col("Secrets", "integer"), AGE_COL],
                       lambda o: [o["metadata"]["name"], len(o.get("secrets") or []),
                                  age(o["metadata"].get("creationTimestamp"))]),
    "Node": ([NAME_COL, _col("Status"), _col("Roles"), AGE_COL, _col("Version"),
              _col("Internal-IP", priority=1), _col("External-IP", priority=1), _col("OS-Image", priority=1),
              _col("Kernel-Version", priority=1), _col("Container-Runtime", priority=1)],
             lambda o: [o["metadata"]["name"], _node_status(o), _node_roles(o),
                        age(o["metadata"].get("creationTimestamp")),
                        ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
                        _node_ip(o, "InternalIP"), _node_ip(o, "ExternalIP"),
                        ((o.get("status") or {}).get("nodeInfo") or {}).get("osImage", ""),
                        ((o.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion", ""),
                        ((o.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion", "")]),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
              lambda o: [age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")), o.get("type", ""),
                         o.get("reason", ""),
                         f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                         f"{(o.get('involvedObject') or {}).get('name', '')}", o.get("message", "")]),
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "CustomResourceDefinition": ([NAME_COL, _col("Created At", "date")],
                                 lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")]),
}


# ---------------------------------------------------------------------- printer columns (CRDs)

_FILTER_RE = re.compile(r'^\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*["\']([^"\']*)["\']\)\]')


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate the JSONPath subset CRD printer columns use: ``.a.b``, ``[*]``, ``[N]`` and
    ``[?(@.field=="value")]``."""
    results = [obj]
    rest = path.strip()
    if rest.startswith("{") and rest.endswith("}"):
        rest = rest[1:-1]
    while rest:
        if rest.startswith("."):
            m = re.match(r"^\.([A-Za-z0-9_\-]+)", rest)
            if not m:
                break
            key = m.group(1)
            results = [r[key] for r in results if isinstance(r, dict) and key in r]
            rest = rest[m.end():]
        elif rest.startswith("[*]"):
            results = [x for r in results if isinstance(r, list) for x in r]
            rest = rest[3:]
        elif _FILTER_RE.match(rest):
            m = _FILTER_RE.match(rest)
            fpath, value = m.group(1), m.group(2)
            out = []
            for r in results:
                for x in r if isinstance(r, list) else []:
                    got = jsonpath(x, "." + fpath)
                    if got and str(got[0]) == value:
                        out.append(x)
            results = out
            rest = rest[m.end():]
        else:
            m = re.match(r"^\[(\d+)\]", rest)
            if not m:
                break
            i = int(m.group(1))
            results = [r[i] for r in results if isinstance(r, list) and i < len(r)]
            rest = rest[m.end():]
    return results


def _cell(values: list[Any], type_: str) -> Any:
    if not values:
        return None
    if type_ == "date":
        return age(values[0]) if isinstance(values[0], str) else values[0]
    vals = [json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else
            (str(v).lower() if isinstance(v, bool) else v) for v in values]
    if len(vals) == 1:
        return vals[0]
    return ",".join(str(v) for v in vals)


def custom_printer(rt: ResourceType, version: str) -> Printer:
    cols = rt.printer_columns.get(version) or []
    if not cols:
        return [NAME_COL, AGE_COL], lambda o: [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))]
    defs = [NAME_COL] + [
        _col(c["name"], "string" if c.get("type") == "date" else c.get("type", "string"),
             c.get("priority", 0), c.get("format", ""), c.get("description", c["name"]))
        for c in cols
    ]

    def row(o: dict) -> list:
        return [o["metadata"]["name"]] + [_cell(jsonpath(o, c["jsonPath"]), c.get("type", "string")) for c in cols]

    return defs, row


def default_printer() -> Printer:
    return ([NAME_COL, _col("Created At", "date")],
            lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")])


def printer_for(rt: ResourceType, version: str) -> Printer:
    if rt.is_custom:
        return custom_printer(rt, version)
    return BUILTIN.get(rt.kind) or default_printer()


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(rt: ResourceType, version: str, objects: list[dict[str, Any]], resource_version: str | None,
          include_object: str = "Metadata", api_version: str = "meta.k8s.io/v1") -> dict[str, Any]:
    cols, row = printer_for(rt, version)
    rows = []
    for o in objects:
        r: dict[str, Any] = {"cells": row(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = partial_metadata(o)
        rows.append(r)
    meta = {"resourceVersion": resource_version} if resource_version else {}
    return {"kind": "Table", "apiVersion": api_version, "metadata": meta, "columnDefinitions": cols, "rows": rows}
