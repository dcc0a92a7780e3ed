"""Local copies of objects before they are changed, and how to restore them.

Saved under the user's state directory ($KUBECTL_MESH_STATE_DIR, else
$XDG_STATE_HOME/kubectl-mesh, else ~/.local/state/kubectl-mesh), one folder
per cluster (the context's real name and its API server, as the kubeconfig
says, so that two clusters never share a folder) and namespace, one
timestamped file per change. The copies hold whole objects (env values
included), so the folders are 0700 and the files 0600, created without
following symbolic links; a state directory that another user owns, or that
others may write to, is refused. The restore command names the context (and
the kubeconfig when one was given), so that pasting it after `kubectl config
use-context other` still puts the object back where it came from.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kubectl_mesh import errors
from kubectl_mesh.text import command

# Fields the API server owns; a restore must not carry them (a stale
# resourceVersion would make the restore conflict).
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def state_dir() -> Path:
    explicit = os.environ.get("KUBECTL_MESH_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kubectl-mesh"


def restorable(obj: dict) -> dict:
    """The object as it can be given back to `kubectl replace -f`."""
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata") or {}
    for key in _SERVER_FIELDS:
        metadata.pop(key, None)
    clean.pop("status", None)
    return clean


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", part).strip(".") or "_"


# -- which cluster ------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    context: str  # the context's real name ("" when the kubeconfig has none)
    server: str  # its cluster's API server URL ("" when unknown)

    @property
    def folder(self) -> str:
        server = re.sub(r"^[a-z]+://", "", self.server)
        return f"{_safe(self.context or 'current-context')}@{_safe(server or 'unknown-server')}"


def _kubeconfig_files(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig)]
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    return [Path(os.path.expanduser("~")) / ".kube" / "config"]


def resolve_cluster(context: str | None, kubeconfig: str | None) -> Cluster:
    """The context kubectl uses (--context, else the kubeconfig's current-context) and
    its cluster's server, merged over the files as kubectl merges them: the first
    file that sets a key wins. Read from the files, no kubectl run."""
    import yaml

    current, contexts, clusters = None, {}, {}
    for path in _kubeconfig_files(kubeconfig):
        try:
            with open(path, encoding="utf-8") as stream:
                doc = yaml.safe_load(stream.read(1 << 20)) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        if current is None and isinstance(doc.get("current-context"), str) and doc["current-context"]:
            current = doc["current-context"]
        for key, into, inner in (("contexts", contexts, "context"), ("clusters", clusters, "cluster")):
            for entry in doc.get(key) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    into.setdefault(entry["name"], entry.get(inner) if isinstance(entry.get(inner), dict) else {})
    name = context or current or ""
    cluster_name = (contexts.get(name) or {}).get("cluster")
    server = (clusters.get(cluster_name) or {}).get("server") if isinstance(cluster_name, str) else None
    return Cluster(name, server if isinstance(server, str) else "")


# -- the state directory, checked --------------------------------------------------------
def _unusable(path: Path, why: str) -> errors.EnvironmentProblem:
    return errors.EnvironmentProblem(
        f"cannot keep backups in {path}: {why}; nothing was changed "
        "(set KUBECTL_MESH_STATE_DIR to a directory of your own)")


def _checked_dir(fd: int, path: Path) -> int:
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        os.close(fd)
        raise _unusable(path, f"it belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise _unusable(path, f"others may write to it (mode {stat.filemode(info.st_mode)}; chmod 700 it)")
    return fd


def _open_dir(name: str, path: Path, *, parent: int | None = None, create: bool = True) -> int:
    """A directory opened without following a symbolic link, made 0700 if missing."""
    try:
        return _checked_dir(os.open(name, _DIR_FLAGS, dir_fd=parent), path)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        raise _unusable(path, "it is a symbolic link or not a directory" if exc.errno in (errno.ENOTDIR, errno.ELOOP)
                        else exc.strerror or str(exc)) from None
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from None
    return _open_dir(name, path, parent=parent, create=False)


class Store:
    """Where one command's backups go: checked once, before its first write."""

    def __init__(self, context: str | None, kubeconfig: str | None):
        self.context = context
        self.kubeconfig = kubeconfig
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = resolve_cluster(self.context, self.kubeconfig)
        return self._cluster

    def ready(self) -> None:
        """Fail (exit 4, one line) unless backups can be written: called before any write."""
        os.close(self._folder(None))

    def _folder(self, namespace: str | None, area: str = "backups") -> int:
        root = state_dir()
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(root, exc.strerror or str(exc)) from None
        fd = _open_dir(str(root), root)
        try:
            path = root
            for part in (area, self.cluster.folder, *([_safe(namespace)] if namespace is not None else [])):
                path = path / part
                child = _open_dir(part, path, parent=fd)
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def save(self, obj: dict, *, now: datetime | None = None) -> Path:
        """Write `obj` as YAML (0600, never through a symbolic link); return the file's path."""
        import yaml

        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or "_cluster"
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{_safe(str(obj.get('kind', 'object')).lower())}-{_safe(str(metadata.get('name', '')))}.yaml"
        folder = self._folder(namespace)
        path = state_dir() / "backups" / self.cluster.folder / _safe(namespace) / name
        try:
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=folder)
        except OSError as exc:
            raise _unusable(path.parent, exc.strerror or str(exc)) from None
        finally:
            os.close(folder)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(yaml.safe_dump(restorable(obj), sort_keys=False))
        return path

    def restore_command(self, path: Path) -> str:
        argv = ["kubectl"]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.cluster.context:
            argv += ["--context", self.cluster.context]
        return command(*argv, "replace", "-f", str(path))


class Intents:
    """What a command meant to write when the write's answer was lost, kept beside the
    backups (same checks, same cluster folder), so that running the command again
    completes that change instead of planning a new one from what it then reads
    (a relative change such as `canary promote --step` would otherwise step twice)."""

    AREA = "pending"

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def _name(kind: str, name: str) -> str:
        return f"{_safe(kind.lower())}-{_safe(name)}.json"

    def load(self, kind: str, namespace: str, name: str) -> dict | None:
        import json

        path = state_dir() / self.AREA / self.store.cluster.folder / _safe(namespace) / self._name(kind, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, encoding="utf-8") as stream:
            try:
                record = json.loads(stream.read(1 << 16))
            except ValueError:
                return None
        return record if isinstance(record, dict) else None

    def save(self, kind: str, namespace: str, name: str, record: dict) -> None:
        import json

        folder = self.store._folder(namespace, self.AREA)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._name(kind, name), dir_fd=folder)
            fd = os.open(self._name(kind, name), _FILE_FLAGS, 0o600, dir_fd=folder)
        finally:
            os.close(folder)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(record, stream)

    def clear(self, kind: str, namespace: str, name: str) -> None:
        path = state_dir() / self.AREA / self.store.cluster.folder / _safe(namespace) / self._name(kind, name)
        with contextlib.suppress(OSError):
            path.unlink()


def discard(path: Path | None) -> None:
    """A backup of a version that was not changed after all."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
