"""Reading manifests for `-f FILE|DIR|-`, the way `kubectl apply -f` takes them.

Files hold one or more YAML documents (or JSON); `List` kinds are unpacked;
directories are read recursively (`.yaml`, `.yml`, `.json`, hidden entries
skipped), in sorted order; `-` reads standard input. Every object remembers
where it came from (`file:line`) so that a finding can point at it.

Bad input is the user's to fix, so it is a UsageError (exit 2) naming the
file and the line: a missing path, YAML or JSON that does not parse, a
document that is not a Kubernetes object.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import TextIO

from kubectl_mesh import manifest_types, untrusted
from kubectl_mesh.errors import UsageError
from kubectl_mesh.snapshot import CLUSTER_SCOPED

EXTENSIONS = (".yaml", ".yml", ".json")
_FIRST_CHAR = re.compile(r"\S")
STDIN = "-"


@dataclass
class Manifests:
    objects: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # (kind, namespace, name) -> (file, line) of the document that declared it.
    origins: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)

    def origin(self, kind: str, namespace: str | None, name: str) -> str | None:
        """"file:line" of the document that declared an object."""
        where = self.origins.get((kind, "" if kind in CLUSTER_SCOPED else namespace or "", name))
        return f"{where[0]}:{where[1]}" if where else None


def load(paths: list[str] | tuple[str, ...], *, namespace: str | None = None,
         stdin: TextIO | None = None, checks_only: bool = False) -> Manifests:
    """Read every path; objects without a namespace get `namespace` (or "default").
    Within the limits of kubectl_mesh.untrusted, each refused with one line.

    `checks_only`: JSON files are decoded with only the fields the checks read
    (kubectl_mesh.decode), for read-only commands."""
    result = Manifests()
    default_ns = namespace or "default"
    seen_stdin = False
    budget = untrusted.Budget()
    for path in paths:
        if not path:
            raise UsageError('-f "": give a file, a directory or - for standard input')
        if path == STDIN:
            if seen_stdin:
                raise UsageError('"-" (standard input) given more than once')
            seen_stdin = True
            text = untrusted.read_stream(stdin or sys.stdin, "<stdin>", budget)
            _add(result, parse(text, "<stdin>"), "<stdin>", default_ns)
            result.files.append("<stdin>")
            continue
        for file in untrusted.expand(path, budget, EXTENSIONS):
            with untrusted.open_file(file, budget) as stream:
                documents = read_json(stream, file, checks_only=checks_only)
                if documents is None:
                    documents = parse(untrusted.read_open(stream, file), file)
            _add(result, documents, file, default_ns)
            result.files.append(file)
    return result


def read_json(stream, file: str, *, checks_only: bool = False) -> list[tuple[object, int]] | None:
    """The documents of a JSON file (a `.json` name, or text starting with { or [),
    decoded from the file's bytes; None for any other file (YAML: see parse), the
    stream left at its start."""
    from kubectl_mesh import decode

    start = stream.read(4096).lstrip()
    stream.seek(0)
    if not (file.lower().endswith(".json") or start[:1] in (b"{", b"[")):
        return None
    try:
        with untrusted.nesting_bound():
            document = decode.decode_file(stream, checks_only=checks_only)
    except decode.DecodeError as exc:
        if file.lower().endswith(".json"):
            raise UsageError(f"{file}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        stream.seek(0)
        return None  # YAML that starts like JSON (a flow mapping): parse() reads it
    except UsageError as exc:
        raise UsageError(f"{file}: {exc.message}") from None
    documents = document if isinstance(document, list) else [document]
    return [(d, 1) for d in documents]


def parse(text: str, source: str) -> list[tuple[object, int]]:
    """The documents in one file's text with the line (1-based) each starts on."""
    first = _FIRST_CHAR.search(text)
    if source.lower().endswith(".json") or (first and first.group() in "{["):
        try:
            document = untrusted.load_json(text)
        except UsageError as exc:
            raise UsageError(f"{source}: {exc.message}") from None
        except json.JSONDecodeError as exc:
            if source.lower().endswith(".json"):
                raise UsageError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        else:
            documents = document if isinstance(document, list) else [document]
            return [(d, 1) for d in documents]
    return _yaml_documents(text, source)


def _yaml_documents(text: str, source: str) -> list[tuple[object, int]]:
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents: list[tuple[object, int]] = []
    scan = loader_class(text)
    try:  # the limits first, over the parser's events, before any node is composed
        untrusted.check_yaml_events(scan, source)
    except yaml.YAMLError:
        pass  # reported with its line by the real parse below
    finally:
        scan.dispose()
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            documents.append((loader.construct_document(node), line))
    except RecursionError:
        raise UsageError(f"{source}: nested more than {untrusted.MAX_NESTING} levels deep") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4,300)
        raise UsageError(f"{source}: invalid YAML: {str(exc).split(';')[0]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return documents


def _objects(document: dict, where: str) -> list[dict]:
    """The objects of one document: itself, or a List's items (nested Lists unpacked);
    an item that is not an object is refused, naming its place."""
    kind = document.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List") and "items" in document):
        return [document]
    items = document.get("items")
    if not isinstance(items, list):
        raise UsageError(f"{where}: {kind}.items must be a list, not {manifest_types.actual(items)}")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise UsageError(f"{where}: {kind} item {index} is not a Kubernetes object "
                             f"(a mapping with apiVersion and kind), but {manifest_types.actual(item)}")
        nested = item.get("kind")
        out.extend(_objects(item, where) if isinstance(nested, str) and nested.endswith("List")
                   and "items" in item else [item])
    return out


def _add(result: Manifests, documents: list[tuple[object, int]], source: str, default_ns: str) -> None:
    """Each Kubernetes object of one file's documents (List kinds unpacked), checked and
    added: without a namespace it gets `default_ns`. One pass over the objects, as a
    cluster's `kubectl get -o json` has tens of thousands. An object whose fields do not
    have the types the checks read (manifest_types.py) is refused with one line naming it."""
    objects, origins = result.objects, result.origins
    for number, (document, line) in enumerate(documents, 1):
        if document is None:
            continue  # an empty document ("---" at the end, or comments only)
        where = f"{source}:{line}" + (f": document {number}" if len(documents) > 1 else "")
        if not isinstance(document, dict):
            raise UsageError(f"{where}: not a Kubernetes object (a mapping with apiVersion and kind), "
                             f"but {manifest_types.actual(document)}")
        for obj in _objects(document, where):
            kind = obj.get("kind")
            if not obj.get("apiVersion") or not kind:
                missing = [k for k in ("apiVersion", "kind") if not obj.get(k)]
                raise UsageError(f"{where}: object has no {' and '.join(missing)}")
            found = manifest_types.object_problem(obj)
            metadata = obj.get("metadata")
            if found is None and (not isinstance(metadata, dict) or not metadata.get("name")):
                raise UsageError(f"{where}: {kind} has no metadata.name")
            if found is not None:
                name = metadata.get("name") if isinstance(metadata, dict) else None
                what = f"{kind} {name}" if isinstance(kind, str) and isinstance(name, str) else "object"
                raise UsageError(f"{where}: {what}: {found}")
            if kind in CLUSTER_SCOPED:
                key = (kind, "", metadata["name"])
            else:
                if not metadata.get("namespace"):
                    metadata["namespace"] = default_ns
                key = (kind, metadata["namespace"], metadata["name"])
            objects.append(obj)
            if key not in origins:
                origins[key] = (source, line)


# -- what the manifests will run --------------------------------------------------
# A pod planned from a workload's template (manifests carry no pods) is marked with
# this key, outside metadata, so that messages can say "pod template of deployment/x".
TEMPLATE_OF = "x-kubectl-mesh-template-of"


def snapshot(manifests: Manifests, *, source: str = "manifests"):
    """The Snapshot the manifests describe once applied.

    Manifests hold workloads, not pods; for each Deployment, StatefulSet or
    DaemonSet (not scaled to zero) whose pods are not in the manifests, one pod
    is planned from its template, injected as Istio's webhook would inject it:
    with an istio-proxy container when its namespace is labelled for injection
    (or when the namespace is not among the manifests, so that its labels are
    unknown: then injection is assumed unless the template opts out).
    """
    from kubectl_mesh.mesh import WORKLOAD_KINDS
    from kubectl_mesh.snapshot import Snapshot

    objects = manifests.objects
    if not any(o["kind"] in WORKLOAD_KINDS for o in objects):
        return Snapshot(objects, source=source)
    first = Snapshot(objects, source=source)
    planned = planned_pods(first)
    if not planned:
        return first
    return Snapshot([*objects, *planned], source=source)


def _owners_of_pods(snap) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the workloads that own pods by ownerReferences
    (a Deployment through its ReplicaSet), as `kubectl get -o json` output has them.
    Resolved once per distinct owner, not once per pod."""
    owners: set[tuple[str, str, str]] = set()
    seen: set[tuple[str, str, str]] = set()
    for pod in snap.pods():
        metadata = pod.get("metadata") or {}
        refs = metadata.get("ownerReferences")
        if not refs:
            continue
        first = refs[0]
        key = (metadata.get("namespace", ""), first.get("kind", ""), first.get("name", ""))
        if key in seen:
            continue
        seen.add(key)
        ref = snap.workload_of(pod)
        if ref is not None:
            owners.add((ref.kind, ref.namespace, ref.name))
    return owners


def planned_pods(snap) -> list[dict]:
    from kubectl_mesh import mesh

    pods = []
    owned = _owners_of_pods(snap)
    for workload in snap.workloads():
        spec = workload.get("spec") or {}
        if workload["kind"] != "DaemonSet" and spec.get("replicas", 1) == 0:
            continue
        ns = mesh.namespace_of(workload)
        if (workload["kind"], ns, mesh.name_of(workload)) in owned:
            continue
        if spec.get("selector") and snap.select_pods_by_selector(ns, spec["selector"]):
            continue  # the manifests carry its pods
        template = mesh.template_meta(workload)
        name = mesh.name_of(workload)
        pod_spec = dict(mesh.pod_spec(workload))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-pod-template",
                "namespace": ns,
                "labels": dict(template.get("labels") or {}),
                "annotations": dict(template.get("annotations") or {}),
                "ownerReferences": [
                    {"apiVersion": workload.get("apiVersion", "apps/v1"), "kind": workload["kind"],
                     "name": name, "controller": True}
                ],
            },
            "spec": pod_spec,
            "status": {"phase": "Pending"},
            TEMPLATE_OF: f"{workload['kind'].lower()}/{name}",
        }
        ns_obj = snap.namespace(ns)
        injected = (ns_obj is None and not mesh.opted_out(pod)) or mesh.expects_sidecar(pod, ns_obj)
        if injected and not mesh.has_sidecar(pod):
            pod_spec["containers"] = [*(pod_spec.get("containers") or []),
                                      {"name": mesh.PROXY, "image": "(injected on creation)"}]
        pods.append(pod)
    return pods
