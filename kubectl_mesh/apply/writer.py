"""Read, plan, write: one object at a time, with optimistic concurrency.

Every write of the plugin goes through `Writer._write`, one loop for the
three ways an object is changed:

- `apply(ref, merge, current)`: the object wanted is `merge(current)`. A new
  object goes to `kubectl create -f -` (if it appeared meanwhile, it is read
  and merged again); an existing one is changed with `kubectl patch --type
  merge`: a JSON merge patch of exactly the fields the merge changed. A patch
  (rather than `kubectl replace`) leaves everything else alone, including the
  `last-applied-configuration` annotation, and goes to whatever version of
  the API the cluster serves;
- `patch(ref, make_patch, current)`: a merge patch the caller computes;
- `label(ref, plan_change, current)`: a namespace's labels, by `kubectl label`.

Each attempt plans from the object as last read; a plan of nothing writes
nothing (a second run plans nothing). An existing object is saved locally
first (backup.save), and the write carries the resourceVersion that was read,
so the API server refuses it (409 Conflict) if anyone changed the object
since: then the object is read again, planned again and written again, a
bounded number of times. A concurrent change is never overwritten. Under
--dry-run (the runner's) nothing is written: the step carries a unified diff.

What the server returns is planned against again (it must need nothing
more), so a write that did not land fails the step.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.apply import backup
from kubectl_mesh.apply.merge_patch import apply_merge_patch, merge_diff
from kubectl_mesh.report import APPLIED, FAILED, PLANNED, UNCHANGED, Step
from kubectl_mesh.snapshot import CORE_RESOURCES, ISTIO_RESOURCES

ATTEMPTS = 5
# Fields the server owns that a written object should not carry.
_DROP_ON_WRITE = ("managedFields",)


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str  # "" for a cluster-scoped object
    name: str

    @property
    def resource(self) -> str:
        """The fully qualified resource name kubectl is given."""
        return {**CORE_RESOURCES, **ISTIO_RESOURCES}[self.kind]

    @property
    def target(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def scope(self) -> list[str]:
        """kubectl's namespace flag for this object (none for a cluster-scoped one)."""
        return ["-n", self.namespace] if self.namespace else []

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


@dataclass
class Change:
    """One attempt's write, planned from the object as last read."""

    args: list[str]
    after: dict  # the object as it will be once written
    reason: str
    stdin: str | None = None
    creating: bool = False
    diff: bool = True  # show a unified diff under --dry-run


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
    patch = merge_diff(for_write(clean(current)), for_write(clean(desired)))
    version = (current.get("metadata") or {}).get("resourceVersion")
    if version:
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return patch


def same(a: dict | None, b: dict | None) -> bool:
    """Equal for our purposes: the same object apart from status and server-owned metadata."""
    return clean(a) == clean(b)


def _patch_args(ref: ObjectRef, body: dict) -> list[str]:
    return ["patch", ref.resource, ref.name, *ref.scope, "--type", "merge",
            "-p", json.dumps(body, separators=(",", ":")), "-o", "json"]


class Writer:
    def __init__(self, runner, *, progress: Callable[[str], None] | None = None, attempts: int = ATTEMPTS):
        self.runner = runner
        self.progress = progress or (lambda message: None)
        self.attempts = attempts

    # -- reading ------------------------------------------------------------------
    def read(self, ref: ObjectRef) -> dict | None:
        try:
            return self.runner.kubectl_json("get", ref.resource, ref.name, *ref.scope)
        except errors.NotFound:
            return None

    # -- the three kinds of write -------------------------------------------------
    def apply(
        self,
        ref: ObjectRef,
        merge: Callable[[dict | None], dict | None],
        current: dict | None,
        *,
        reason: str,
        action: str | None = None,
    ) -> WriteStep:
        """Merge into `current` (as read) and create or patch it; see the module's docstring."""

        def plan(obj: dict | None) -> Change | None:
            desired = merge(copy.deepcopy(obj) if obj is not None else None)
            if desired is None or (obj is not None and same(desired, obj)):
                return None
            if obj is None:
                return Change(["create", "-f", "-", "-o", "json"], desired, reason,
                              stdin=json.dumps(for_write(desired)), creating=True)
            return Change(_patch_args(ref, conditional_patch(obj, desired)), desired, reason)

        return self._write(ref, plan, current, action=action, unchanged=f"{reason}: already so", creatable=True)

    def patch(
        self,
        ref: ObjectRef,
        make_patch: Callable[[dict], dict | None],
        current: dict | None,
        *,
        reason: str,
        action: str = "patch",
        verify: Callable[[dict], bool] | None = None,
    ) -> WriteStep:
        """A JSON merge patch computed from `current` (None: nothing to change); the
        patch carries metadata.resourceVersion, so a concurrent change makes it conflict."""

        def plan(obj: dict) -> Change | None:
            body = make_patch(copy.deepcopy(obj))
            if body is None:
                return None
            after = apply_merge_patch(obj, {k: v for k, v in body.items() if k != "metadata"})
            return Change(_patch_args(ref, body), after, reason)

        return self._write(ref, plan, current, action=action, unchanged=f"{reason}: already so", verify=verify)

    def label(self, ref: ObjectRef, plan_change, current: dict) -> WriteStep:
        """`plan_change(current)` (an injection.LabelChange) as one `kubectl label`
        carrying the resourceVersion read."""

        def plan(obj: dict) -> Change | None:
            change = plan_change(obj)
            if change.empty:
                return None
            version = (obj.get("metadata") or {}).get("resourceVersion")
            return Change(change.kubectl_args(ref.name, version), change.applied_to(obj),
                          "; ".join(change.reasons), diff=False)

        return self._write(ref, plan, current, action="label", unchanged="labels already as wanted")

    # -- the one loop -------------------------------------------------------------
    def _write(
        self,
        ref: ObjectRef,
        plan: Callable[[dict | None], Change | None],
        current: dict | None,
        *,
        action: str | None,
        unchanged: str,
        creatable: bool = False,
        verify: Callable[[dict], bool] | None = None,
    ) -> WriteStep:
        for attempt in range(1, self.attempts + 1):
            if current is None and not creatable:
                raise errors.NotFound(f"{ref.target} not found in namespace {ref.namespace}")
            change = plan(current)
            if change is None:
                return WriteStep(action or "keep", ref.target, "", unchanged, UNCHANGED, attempts=attempt - 1)
            step = WriteStep(
                action or ("create" if change.creating else "update"),
                ref.target,
                self.runner.display("kubectl", change.args),
                change.reason,
                PLANNED,
                attempts=attempt,
            )
            if self.runner.dry_run:
                if change.diff:
                    where = f"{ref.target} -n {ref.namespace}" if ref.namespace else ref.target
                    step.diff = yaml_diff(current, change.after, where)
                return step
            saved = None
            if current is not None:
                saved = backup.save(current, self.runner.context)
                step.backup = str(saved)
                step.restore = backup.restore_command(saved, self.runner.context, self.runner.kubeconfig)
            try:
                out = self.runner.kubectl(*change.args, stdin=change.stdin, mutating=True)
            except errors.Conflict:
                self._discard(saved)
                self.progress(f"{ref.target} changed since it was read; reading it again and merging "
                              f"(attempt {attempt} of {self.attempts})")
                current = self.read(ref)
                continue
            except errors.AlreadyExists:
                if not change.creating:
                    raise
                self.progress(f"{ref.target} was created meanwhile; reading it and merging into it")
                current = self.read(ref)
                continue
            except errors.NotFound:
                self._discard(saved)
                if change.creating or not creatable:
                    raise
                self.progress(f"{ref.target} was deleted meanwhile; creating it again")
                current = None
                continue
            except errors.MeshError:
                self._discard(saved)
                raise
            written = _parse(out)
            kept = written is None or (plan(written) is None and (verify is None or verify(written)))
            step.status = APPLIED if kept else FAILED
            if not kept:
                step.reason += ": the API server did not keep the change"
            return step
        raise errors.Conflict(
            f"{ref.target} in {ref.namespace} kept changing: gave up after {self.attempts} attempts, "
            "nothing was overwritten; run the command again"
        )

    @staticmethod
    def _discard(saved) -> None:
        """A backup of a version that was not changed after all (its write failed)."""
        if saved is not None:
            with contextlib.suppress(OSError):
                saved.unlink()


def _parse(out: str) -> dict | None:
    try:
        parsed = json.loads(out) if out and out.strip() else None
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
