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
import mmap
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kubectl_mesh.errors import UsageError
from kubectl_mesh.snapshot import CLUSTER_SCOPED, flatten

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

    `checks_only`: JSON files are decoded with only the fields the checks read
    (kubectl_mesh.decode), for read-only commands."""
    result = Manifests()
    default_ns = namespace or "default"
    seen_stdin = False
    for path in paths:
        if not path:
            raise UsageError('-f "": give a file, a directory or - for standard input')
        if path == STDIN:
            if seen_stdin:
                raise UsageError('"-" (standard input) given more than once')
            seen_stdin = True
            text = (stdin or sys.stdin).read()
            _add(result, parse(text, "<stdin>"), "<stdin>", default_ns)
            result.files.append("<stdin>")
            continue
        for file in expand(path):
            try:
                documents = read_json(file, checks_only=checks_only)
                if documents is None:
                    documents = parse(read_text(file), file)
            except UnicodeDecodeError:
                raise UsageError(f"{file}: not a text file (UTF-8 expected)") from None
            except OSError as exc:
                raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
            _add(result, documents, file, default_ns)
            result.files.append(file)
    return result


# From this size on a file is decoded from a memory map (see read_text).
MAP_FROM_BYTES = 1 << 20


def read_text(file: str) -> str:
    """The file's text, as Path.read_text(encoding="utf-8") gives it.

    A large file (a whole cluster's `kubectl get -o json`) is decoded straight from
    a memory map of it, not from a copy of its bytes read first: filling that copy,
    as large as the file, costs a page fault every 4 KiB (about 4,000 of them, a
    tenth of the system time, on a 15 MB snapshot).
    """
    if os.stat(file).st_size >= MAP_FROM_BYTES:
        with open(file, "rb") as stream:
            try:
                mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                mapped = None  # cannot be mapped: read as any other file
            if mapped is not None:
                with mapped:
                    text = str(mapped, "utf-8")
                if "\r" in text:  # the newlines that read_text translates
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                return text
    return Path(file).read_text(encoding="utf-8")


def read_json(file: str, *, checks_only: bool = False) -> list[tuple[object, int]] | None:
    """The documents of a JSON file (a `.json` name, or text starting with { or [),
    decoded from the file's bytes; None for any other file (YAML: see parse)."""
    from kubectl_mesh import decode

    with open(file, "rb") as stream:
        start = stream.read(4096).lstrip()
        if not (file.lower().endswith(".json") or start[:1] in (b"{", b"[")):
            return None
        stream.seek(0)
        try:
            document = decode.decode_file(stream, checks_only=checks_only)
        except decode.DecodeError as exc:
            if file.lower().endswith(".json"):
                raise UsageError(f"{file}:{exc.lineno}: invalid JSON: {exc.msg}") from None
            return None  # YAML that starts like JSON (a flow mapping): parse() reads it
    documents = document if isinstance(document, list) else [document]
    return [(d, 1) for d in documents]


def expand(path: str) -> list[str]:
    """The manifest files a path names: itself, or those under it, sorted."""
    target = Path(path)
    if not target.exists():
        raise UsageError(f"{path}: no such file or directory")
    if not target.is_dir():
        return [path]
    found: list[str] = []
    _walk(target, found)
    if not found:
        raise UsageError(f"{path}: no manifests ({', '.join(EXTENSIONS)}) in this directory")
    return found


def _walk(directory: Path, found: list[str]) -> None:
    """Entries in lexical order, directories descended where they sort (as kubectl's
    filepath.Walk does)."""
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            _walk(entry, found)
        elif entry.name.lower().endswith(EXTENSIONS):
            found.append(str(entry))


def parse(text: str, source: str) -> list[tuple[object, int]]:
    """The documents in one file's text with the line (1-based) each starts on."""
    first = _FIRST_CHAR.search(text)
    if source.lower().endswith(".json") or (first and first.group() in "{["):
        try:
            document = json.loads(text)
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
    loader = loader_class(text)
    documents: list[tuple[object, int]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            documents.append((loader.construct_document(node), line))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return documents


def _add(result: Manifests, documents: list[tuple[object, int]], source: str, default_ns: str) -> None:
    """Each Kubernetes object of one file's documents (List kinds unpacked), checked and
    added: without a namespace it gets `default_ns`. One pass over the objects, as a
    cluster's `kubectl get -o json` has tens of thousands."""
    objects, origins = result.objects, result.origins
    for document, line in documents:
        if document is None:
            continue  # an empty document ("---" at the end, or comments only)
        if not isinstance(document, dict):
            raise UsageError(f"{source}:{line}: not a Kubernetes object (a mapping with apiVersion and kind)")
        for obj in flatten(document):
            if not isinstance(obj, dict):
                raise UsageError(f"{source}:{line}: a List item is not a Kubernetes object")
            kind = obj.get("kind")
            if not obj.get("apiVersion") or not kind:
                missing = [k for k in ("apiVersion", "kind") if not obj.get(k)]
                raise UsageError(f"{source}:{line}: object has no {' and '.join(missing)}")
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict) or not metadata.get("name"):
                raise UsageError(f"{source}:{line}: {kind} has no metadata.name")
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
