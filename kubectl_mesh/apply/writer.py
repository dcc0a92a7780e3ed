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

import copy
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass

from kubectl_mesh import errors
from kubectl_mesh.apply import backup
from kubectl_mesh.apply.merge_patch import apply_merge_patch, merge_diff
from kubectl_mesh.apply.plan import Write
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
    # The write's answer was lost and it may land (or have landed) unseen.
    uncertain: bool = False

    def as_dict(self) -> dict:
        base = super().as_dict()
        if self.backup:
            base["backup"] = self.backup
        if self.uncertain:
            base["outcome"] = "unknown"
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


# Errors after which a write may have landed: its answer was lost, not refused.
_ANSWER_LOST = (errors.TimedOut, errors.ClusterUnreachable, errors.ServerError)
# Of what is left of --timeout when a write starts, kept back (at most this) for
# reading the object again should the write's answer be lost.
REREAD_RESERVE = 5.0


class Writer:
    def __init__(self, runner, *, progress: Callable[[str], None] | None = None, attempts: int = ATTEMPTS):
        self.runner = runner
        self.progress = progress or (lambda message: None)
        self.attempts = attempts
        self.backups = backup.Store(runner.context, runner.kubeconfig)

    # -- reading ------------------------------------------------------------------
    def read(self, ref: ObjectRef) -> dict | None:
        try:
            return self.runner.kubectl_json("get", ref.resource, ref.name, *ref.scope)
        except errors.NotFound:
            return None

    # -- the plan's writes ---------------------------------------------------------
    def _write_of(self, ref: ObjectRef, verbs: tuple[str, ...], run) -> Write:
        """A Write of the plan: before the first write, the backups must be possible."""
        return Write([ref], verbs, run, prepare=None if self.runner.dry_run else self.backups.ready)

    def applying(self, ref: ObjectRef, merge, current: dict | None, *, reason: str, action: str | None = None) -> Write:
        return self._write_of(ref, ("get", "create", "patch"),
                              lambda: self.apply(ref, merge, current, reason=reason, action=action))

    def patching(self, ref: ObjectRef, make_patch, current: dict | None, *, reason: str, action: str = "patch",
                 verify=None) -> Write:
        return self._write_of(ref, ("get", "patch"),
                              lambda: self.patch(ref, make_patch, current, reason=reason, action=action,
                                                 verify=verify))

    def labelling(self, ref: ObjectRef, plan_change, current: dict, *,
                  verbs: tuple[str, ...] = ("get", "patch")) -> Write:
        return self._write_of(ref, verbs, lambda: self.label(ref, plan_change, current))

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
                saved = self.backups.save(current)
                step.backup = str(saved)
                step.restore = self.backups.restore_command(saved)
            try:
                out = self.runner.kubectl(*change.args, stdin=change.stdin, mutating=True,
                                          timeout=self._write_bound())
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
            except _ANSWER_LOST as exc:
                settled, again = self._settle(ref, plan, step, exc, verify)
                if settled is not None:
                    return settled
                self._discard(saved)
                self.progress(f"{ref.target}: {exc.message}; it did not land, trying again "
                              f"(attempt {attempt} of {self.attempts})")
                current = again
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

    def _write_bound(self) -> float | None:
        """A write may take what is left of --timeout but a reserve, so that the object
        can still be read again if the write's answer is lost."""
        left = self.runner.left()
        return None if left <= 0 else max(0.5, left - min(REREAD_RESERVE, left / 4))

    def _settle(self, ref, plan, step: WriteStep, exc: errors.MeshError,
                verify) -> tuple[WriteStep | None, dict | None]:
        """A write whose answer was lost (timeout, dropped connection, 5xx): read the
        object again and say what is there. Returns (the step, ...) when that settles
        it (applied); (None, the object read) when it did not land and may be tried
        again on what was read; raises `exc`,
        carrying the step, when it cannot be known or the time is up. The backup is
        kept whenever the write may have landed, or may still."""
        try:
            again = self.read(ref)
        except errors.MeshError as unreadable:
            step.status, step.uncertain = FAILED, True
            step.reason += (f": outcome unknown ({exc.message}), and it could not be read again "
                            f"({unreadable.message}); the backup is kept; run the command again to converge")
            exc.step = step
            raise exc from None
        if again is not None and plan(again) is None and (verify is None or verify(again)):
            step.status = APPLIED
            step.reason += f" (its answer was lost: {exc.message}; read again, it is applied)"
            return step, again
        if isinstance(exc, errors.TimedOut) or self.runner.left() <= 0:
            # The request may still be on its way: it is conditional on the version read,
            # so it lands only on that version, and a re-run converges whichever comes first.
            step.status, step.uncertain = FAILED, True
            step.reason += (f": not applied when read again after: {exc.message}; the request may still land, "
                            "so the backup is kept; run the command again to converge")
            exc.step = step
            raise exc from None
        return None, again

    @staticmethod
    def _discard(saved) -> None:
        """A backup of a version that was not changed after all (its write failed)."""
        backup.discard(saved)


def _parse(out: str) -> dict | None:
    try:
        parsed = json.loads(out) if out and out.strip() else None
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
