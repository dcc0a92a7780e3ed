"""The run of a progressive canary as a state machine, and the state it keeps on the VirtualService.

A run walks its steps (canary weights, e.g. 10, 25, 50, 100). At each step it waits one
interval, measures, and decides (see `decision`):

- pass: the next step (after the last: succeeded);
- fail: counted (over the whole run); at --failure-limit fails, rolled back; else the step
  is held and measured again;
- inconclusive: counted (per step); at --failure-limit in a row, the run stops where it is
  (weight kept, nothing promoted); else held and measured again.

Progress is kept in the VirtualService's `kubectl-mesh.io/canary` annotation, beside the
roles, as `"run": {...}`, written with each weight change and each decision (conditional
writes: a concurrent change is never overwritten). It names the run's holder and a lease:
while the holder's last write is younger than the lease, another runner is refused; an
interrupted run releases it, a killed one lets it expire. Running the same command again
resumes at the stored step; a rolled-back run is not started again without --restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

RUNNING, INTERRUPTED, HELD, INCONCLUSIVE = "running", "interrupted", "held", "inconclusive"
SUCCEEDED, FAILED, ABORTED = "succeeded", "failed", "aborted"
PHASES = (RUNNING, INTERRUPTED, HELD, INCONCLUSIVE, SUCCEEDED, FAILED, ABORTED)
RESUMABLE = (RUNNING, INTERRUPTED, HELD, INCONCLUSIVE)

ADVANCE, HOLD, ROLLBACK, STOP, DONE = "advance", "hold", "rollback", "stop", "done"
LEASE_MARGIN = 60.0  # seconds beyond two intervals before a silent holder counts as gone


@dataclass(frozen=True)
class Plan:
    stable: str  # version label values
    canary: str
    steps: tuple[int, ...]
    interval: float  # seconds
    failure_limit: int

    @property
    def lease(self) -> float:
        """How long a holder may stay silent: a wait, a measurement, and a margin for a slow API server."""
        return 2 * self.interval + LEASE_MARGIN


@dataclass(frozen=True)
class RunState:
    id: str
    stable: str
    canary: str
    steps: tuple[int, ...]
    step: int  # index into steps
    phase: str = RUNNING
    failures: int = 0
    inconclusive: int = 0
    holder: str = ""  # who runs it now; "" when nobody does
    renewed: float = 0.0  # epoch seconds of the holder's last write
    lease: float = 0.0
    started: float = 0.0
    reason: str = ""  # why it stopped, for the next reader

    @property
    def weight(self) -> int:
        return self.steps[self.step]

    @property
    def position(self) -> str:
        return f"step {self.step + 1}/{len(self.steps)} ({self.weight}%)"

    def held_by_other(self, now: float) -> bool:
        return self.phase == RUNNING and bool(self.holder) and now < self.renewed + self.lease

    def as_dict(self) -> dict:
        doc = {"id": self.id, "stable": self.stable, "canary": self.canary, "steps": list(self.steps),
               "step": self.step, "phase": self.phase, "failures": self.failures,
               "inconclusive": self.inconclusive, "started": round(self.started, 3)}
        if self.holder:
            doc.update(holder=self.holder, renewed=round(self.renewed, 3), lease=self.lease)
        if self.reason:
            doc["reason"] = self.reason
        return doc

    @classmethod
    def from_dict(cls, doc) -> RunState | None:
        """The stored state, or None when it is missing or not ours to trust (hand-edited, truncated)."""
        if not isinstance(doc, dict):
            return None
        try:
            steps = tuple(doc["steps"])
            state = cls(
                id=str(doc["id"]), stable=str(doc["stable"]), canary=str(doc["canary"]), steps=steps,
                step=doc["step"], phase=doc["phase"], failures=doc.get("failures", 0),
                inconclusive=doc.get("inconclusive", 0), holder=str(doc.get("holder", "")),
                renewed=float(doc.get("renewed", 0.0)), lease=float(doc.get("lease", 0.0)),
                started=float(doc.get("started", 0.0)), reason=str(doc.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        valid = (steps and all(type(w) is int and 0 < w <= 100 for w in steps)
                 and type(state.step) is int and 0 <= state.step < len(steps) and state.phase in PHASES
                 and type(state.failures) is int and type(state.inconclusive) is int)
        return state if valid else None


def read_annotation(value: str | None) -> tuple[dict, RunState | None]:
    """(the whole annotation as a dict, the run stored in it or None)."""
    try:
        doc = json.loads(value) if value else {}
    except (TypeError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return doc, RunState.from_dict(doc.get("run"))


def annotation_with(value: str | None, roles: dict, state: RunState | None) -> str:
    """The annotation with these roles and run (None: no run), other keys kept."""
    doc, _ = read_annotation(value)
    doc.update(canary=roles["canary"], stable=roles["stable"])
    if state is None:
        doc.pop("run", None)
    else:
        doc["run"] = state.as_dict()
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


# -- where a run starts ----------------------------------------------------------------------
class Busy(Exception):
    """Another runner holds the run (exit 3)."""

    def __init__(self, state: RunState) -> None:
        super().__init__(state.holder)
        self.state = state


class AlreadyFailed(Exception):
    """The last run of these versions was rolled back by its analysis (exit 3 without --restart)."""

    def __init__(self, state: RunState) -> None:
        super().__init__(state.reason)
        self.state = state


@dataclass(frozen=True)
class Start:
    state: RunState
    resumed: bool = False
    done: bool = False  # already succeeded: nothing to do
    note: str = ""


def new_run(plan: Plan, run_id: str, holder: str, now: float) -> RunState:
    return RunState(id=run_id, stable=plan.stable, canary=plan.canary, steps=plan.steps, step=0,
                    holder=holder, renewed=now, lease=plan.lease, started=now)


def start_point(stored: RunState | None, plan: Plan, *, run_id: str, holder: str, now: float,
                restart: bool = False, force: bool = False) -> Start:
    """Where this invocation starts: a new run, the stored one resumed, or nothing to do.
    Raises Busy (a live holder; --force takes over) or AlreadyFailed (--restart starts again)."""
    if stored is not None and stored.held_by_other(now) and not force:
        raise Busy(stored)
    fresh = new_run(plan, run_id, holder, now)
    if stored is None:
        return Start(fresh)
    same = (stored.stable, stored.canary) == (plan.stable, plan.canary)
    if not same:
        return Start(fresh, note=f"replacing the stored run of {stored.stable} -> {stored.canary} "
                                 f"({stored.phase} at {stored.position})")
    if restart:
        return Start(fresh, note=f"--restart: the stored run ({stored.phase} at {stored.position}) is discarded")
    if stored.steps != plan.steps:
        return Start(fresh, note=f"the stored run had steps {_steps(stored.steps)}; starting the new schedule")
    if stored.phase == SUCCEEDED:
        return Start(stored, done=True, note=f"already promoted to {stored.weight}% by run {stored.id}")
    if stored.phase == FAILED:
        raise AlreadyFailed(stored)
    if stored.phase == ABORTED:
        return Start(fresh, note=f"the last run was rolled back after an error ({stored.reason}); starting again")
    resumed = replace(stored, phase=RUNNING, inconclusive=0, holder=holder, renewed=now, lease=plan.lease,
                      reason="")
    why = "its holder stopped renewing it" if stored.phase == RUNNING else stored.phase
    return Start(resumed, resumed=True, note=f"resuming run {stored.id} at {stored.position} ({why})")


def _steps(steps: tuple[int, ...]) -> str:
    return ",".join(str(w) for w in steps)


# -- after each decision -----------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    action: str
    state: RunState
    notes: list[str] = field(default_factory=list)


def after(state: RunState, result: str, plan: Plan, now: float, reason: str = "") -> Outcome:
    """The next state and what to do, after an interval judged `result` (pass|fail|inconclusive)."""
    state = replace(state, renewed=now)
    if result == "pass":
        if state.step + 1 >= len(state.steps):
            return Outcome(DONE, replace(state, phase=SUCCEEDED, inconclusive=0, holder="", reason=""))
        return Outcome(ADVANCE, replace(state, step=state.step + 1, inconclusive=0))
    if result == "fail":
        failures = state.failures + 1
        if failures >= plan.failure_limit:
            return Outcome(ROLLBACK, replace(state, failures=failures, phase=FAILED, holder="", reason=reason))
        return Outcome(HOLD, replace(state, failures=failures))
    inconclusive = state.inconclusive + 1
    if inconclusive >= plan.failure_limit:
        return Outcome(STOP, replace(state, inconclusive=inconclusive, phase=INCONCLUSIVE, holder="", reason=reason))
    return Outcome(HOLD, replace(state, inconclusive=inconclusive))


def released(state: RunState, phase: str, reason: str, now: float) -> RunState:
    """The run let go of (interrupted, held or aborted after an error): no holder, a reason."""
    return replace(state, phase=phase, holder="", renewed=now, reason=reason)
