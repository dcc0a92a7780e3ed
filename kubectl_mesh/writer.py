"""Read, merge, write: one object at a time, with optimistic concurrency.

`Writer.apply(ref, merge, current)` computes `merge(current)`; when that
changes nothing it writes nothing (a second run plans nothing). Otherwise:

- a new object goes to `kubectl create -f -`; if it appeared meanwhile
  (AlreadyExists) it is read and merged again;
- an existing object is saved locally first (backup.save), then changed
  with `kubectl patch --type merge`: a JSON merge patch of exactly the
  fields the merge changed, carrying the resourceVersion that was read, so
  the API server refuses it (409 Conflict) if anyone changed the object
  since; then the object is read again, merged again and written again, a
  bounded number of times. A concurrent change is never overwritten. A
  patch (rather than `kubectl replace`) leaves everything else alone,
  including the `kubectl.kubernetes.io/last-applied-configuration`
  annotation that `kubectl replace` would rewrite, and goes to whatever
  version of the API the cluster serves;
- under --dry-run nothing is written: the step carries a unified diff of
  the object's YAML instead.

What the server returns is checked against the merge (merging it again must
change nothing), so a write that did not land fails the step.
`Writer.patch` does the same with a merge patch the caller computes.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass

from kubectl_mesh import backup, errors
from kubectl_mesh.report import APPLIED, FAILED, PLANNED, UNCHANGED, Step
from kubectl_mesh.snapshot import CORE_RESOURCES, ISTIO_RESOURCES

ATTEMPTS = 5
# Fields the server owns that a written object should not carry.
_DROP_ON_WRITE = ("managedFields",)


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> str:
        """The fully qualified resource name kubectl is given."""
        return {**CORE_RESOURCES, **ISTIO_RESOURCES}[self.kind]

    @property
    def target(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @classmethod
    def of(cls, obj: dict) -> ObjectRef:
        metadata = obj.get("metadata") or {}
        return cls(obj.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", ""))


@dataclass
class WriteStep(Step):
    """A plan step for one object; `restore` (on Step) is the command that puts it back
    from `backup`, the local copy saved before the change."""

    backup: str = ""
    attempts: int = 0

    def as_dict(self) -> dict:
        base = super().as_dict()
        if self.backup:
            base["backup"] = self.backup
        return base


def clean(obj: dict | None) -> dict | None:
    """The object as people read it in a diff: no status or server-owned metadata."""
    return backup.restorable(obj) if obj else None


def to_yaml(obj: dict | None) -> str:
    import yaml

    return yaml.safe_dump(clean(obj), sort_keys=False, default_flow_style=False) if obj else ""


def yaml_diff(before: dict | None, after: dict | None, label: str) -> str:
    """Unified diff of two versions of an object, as YAML."""
    lines = difflib.unified_diff(
        to_yaml(before).splitlines(keepends=True),
        to_yaml(after).splitlines(keepends=True),
        fromfile=f"a/{label}" if before else "/dev/null",
        tofile=f"b/{label}" if after else "/dev/null",
    )
    return "".join(lines)


def for_write(obj: dict) -> dict:
    body = copy.deepcopy(obj)
    for key in _DROP_ON_WRITE:
        (body.get("metadata") or {}).pop(key, None)
    body.pop("status", None)
    return body


def conditional_patch(current: dict, desired: dict) -> dict:
    """The JSON merge patch from `current` to `desired`, conditional on the resourceVersion read:
    the API server answers 409 Conflict if the object changed since."""
    from kubectl_mesh.merge import merge_diff

    patch = merge_diff(for_write(clean(current)), for_write(clean(desired)))
    version = (current.get("metadata") or {}).get("resourceVersion")
    if version:
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return patch


def same(a: dict | None, b: dict | None) -> bool:
    """Equal for our purposes: the same object apart from status and server-owned metadata."""
    return clean(a) == clean(b)


class Writer:
    def __init__(self, runner, settings, *, progress: Callable[[str], None] | None = None, attempts: int = ATTEMPTS):
        self.runner = runner
        self.settings = settings
        self.progress = progress or (lambda message: None)
        self.attempts = attempts

    # -- reading ------------------------------------------------------------------
    def read(self, ref: ObjectRef) -> dict | None:
        try:
            return self.runner.kubectl_json("get", ref.resource, ref.name, "-n", ref.namespace)
        except errors.NotFound:
            return None

    # -- writing whole objects ------------------------------------------------------
    def apply(
        self,
        ref: ObjectRef,
        merge: Callable[[dict | None], dict | None],
        current: dict | None,
        *,
        reason: str,
        action: str | None = None,
    ) -> WriteStep:
        """Merge into `current` (as read) and write it; see the module's docstring."""
        for attempt in range(1, self.attempts + 1):
            desired = merge(copy.deepcopy(current) if current is not None else None)
            if desired is None or (current is not None and same(desired, current)):
                return WriteStep(action or "keep", ref.target, "", f"{reason}: already so", UNCHANGED,
                                 attempts=attempt - 1)
            creating = current is None
            if creating:
                args = ["create", "-f", "-", "-o", "json"]
                stdin = json.dumps(for_write(desired))
            else:
                args = ["patch", ref.resource, ref.name, "-n", ref.namespace, "--type", "merge",
                        "-p", json.dumps(conditional_patch(current, desired), separators=(",", ":")), "-o", "json"]
                stdin = None
            step = WriteStep(
                action or ("create" if creating else "update"),
                ref.target,
                self.runner.display("kubectl", args),
                reason,
                PLANNED,
                attempts=attempt,
            )
            if self.settings.dry_run:
                step.diff = yaml_diff(current, desired, f"{ref.target} -n {ref.namespace}")
                return step
            saved = None
            if not creating:
                saved = backup.save(current, self.settings.context)
                step.backup = str(saved)
                step.restore = backup.restore_command(saved, self.settings.context, self.settings.kubeconfig)
            try:
                out = self.runner.kubectl(*args, stdin=stdin, mutating=True)
            except errors.Conflict:
                self._discard(saved)
                self.progress(f"{ref.target} changed since it was read; reading it again and merging "
                              f"(attempt {attempt} of {self.attempts})")
                current = self.read(ref)
                continue
            except errors.AlreadyExists:
                self.progress(f"{ref.target} was created meanwhile; reading it and merging into it")
                current = self.read(ref)
                continue
            except errors.NotFound:
                if creating:
                    raise
                self._discard(saved)
                self.progress(f"{ref.target} was deleted meanwhile; creating it again")
                current = None
                continue
            except errors.MeshError:
                self._discard(saved)
                raise
            return self._verified(step, merge, out)
        raise errors.Conflict(
            f"{ref.target} in {ref.namespace} kept changing: gave up after {self.attempts} attempts, "
            "nothing was overwritten; run the command again"
        )

    # -- patching -------------------------------------------------------------------
    def patch(
        self,
        ref: ObjectRef,
        make_patch: Callable[[dict], dict | None],
        current: dict,
        *,
        reason: str,
        action: str = "patch",
        verify: Callable[[dict], bool] | None = None,
    ) -> WriteStep:
        """A JSON merge patch computed from `current` (None: nothing to change); the
        patch carries metadata.resourceVersion, so a concurrent change makes it conflict."""
        from kubectl_mesh.merge import apply_merge_patch

        for attempt in range(1, self.attempts + 1):
            if current is None:
                raise errors.NotFound(f"{ref.target} not found in namespace {ref.namespace}")
            body = make_patch(copy.deepcopy(current))
            if body is None:
                return WriteStep(action, ref.target, "", f"{reason}: already so", UNCHANGED, attempts=attempt - 1)
            args = ["patch", ref.resource, ref.name, "-n", ref.namespace, "--type", "merge",
                    "-p", json.dumps(body, separators=(",", ":")), "-o", "json"]
            step = WriteStep(action, ref.target, self.runner.display("kubectl", args), reason, PLANNED,
                             attempts=attempt)
            if self.settings.dry_run:
                after = apply_merge_patch(current, {k: v for k, v in body.items() if k != "metadata"})
                step.diff = yaml_diff(current, after, f"{ref.target} -n {ref.namespace}")
                return step
            saved = backup.save(current, self.settings.context)
            step.backup = str(saved)
            step.restore = backup.restore_command(saved, self.settings.context, self.settings.kubeconfig)
            try:
                out = self.runner.kubectl(*args, mutating=True)
            except errors.Conflict:
                self._discard(saved)
                self.progress(f"{ref.target} changed since it was read; reading it again "
                              f"(attempt {attempt} of {self.attempts})")
                current = self.read(ref)
                continue
            except errors.MeshError:
                self._discard(saved)
                raise
            written = _parse(out)
            ok = written is None or (make_patch(written) is None and (verify is None or verify(written)))
            step.status = APPLIED if ok else FAILED
            if not ok:
                step.reason += ": the API server did not keep the change"
            return step
        raise errors.Conflict(
            f"{ref.target} in {ref.namespace} kept changing: gave up after {self.attempts} attempts, "
            "nothing was overwritten; run the command again"
        )

    # -- helpers ----------------------------------------------------------------------
    def _verified(self, step: WriteStep, merge, out: str) -> WriteStep:
        written = _parse(out)
        if written is None or same(merge(copy.deepcopy(written)), written):
            step.status = APPLIED
        else:
            step.status = FAILED
            step.reason += ": the API server did not keep the change"
        return step

    @staticmethod
    def _discard(saved) -> None:
        """A backup of a version that was not changed after all (its write conflicted)."""
        if saved is not None:
            with contextlib.suppress(OSError):
                saved.unlink()


def _parse(out: str) -> dict | None:
    try:
        parsed = json.loads(out) if out and out.strip() else None
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
