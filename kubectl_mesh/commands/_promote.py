"""`canary promote --step` is a relative change: run again after a write whose answer
was lost, it must complete that change, not step a second time (80/20 -> 70/30).

When the VirtualService write's outcome is unknown, promote remembers locally
(apply.backup.Intents, beside the backups) the weights it started from and
the weights it meant. The next promote of that service reads them first:
the live weights already at the target mean the write landed (nothing to
do); still at the start, that the write is completed toward the same target
(conditional on the version read, so a late landing and the re-run cannot
both apply); anything else, that someone changed the weights since, and a
fresh step is planned from what is there.
"""

from __future__ import annotations

from kubectl_mesh.apply.backup import Intents
from kubectl_mesh.report import APPLIED, UNCHANGED, Report


def _key(target, vs_name: str) -> tuple[str, str, str]:
    return ("VirtualService", target.namespace, vs_name)


def pending_target(report: Report, intents: Intents, target, vs_name: str, weights: dict) -> dict | None:
    """The weights a previous promote meant, when running again should complete it;
    None to plan a fresh step."""
    record = intents.load(*_key(target, vs_name))
    if record is None:
        return None
    start, meant = record.get("from"), record.get("to")
    if not isinstance(start, dict) or not isinstance(meant, dict):
        intents.clear(*_key(target, vs_name))
        return None
    shown = f"canary {start.get('canary')} -> {meant.get('canary')}"
    if weights == meant:
        report.notes.append(f"the previous promote ({shown}), whose answer was lost, had landed: nothing more to do")
        return meant
    if weights == start:
        report.notes.append(f"completing the previous promote ({shown}), whose answer was lost")
        return meant
    intents.clear(*_key(target, vs_name))
    report.notes.append(f"a previous promote ({shown}) lost its answer, but the weights have changed since: "
                        "promoting from what is there now")
    return None


def remember(report: Report, intents: Intents, target, vs_name: str, start: dict, meant: dict) -> None:
    """Keep the intent while the write's outcome is unknown; forget it once it is known."""
    step = next((s for s in report.plan if s.target == f"virtualservice/{vs_name}"), None)
    if step is None:
        return
    if getattr(step, "uncertain", False):
        intents.save(*_key(target, vs_name), {"from": start, "to": meant})
    elif step.status in (APPLIED, UNCHANGED):
        intents.clear(*_key(target, vs_name))
