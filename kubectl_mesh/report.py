"""Checks and plans as data, rendered as text, JSON or YAML.

A command builds a Report: checks (what was verified) and a plan (what was,
or would be, changed). The same Report gives the text a person reads, the
JSON/YAML a script reads, and the exit code, so the three cannot disagree.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from kubectl_mesh import errors
from kubectl_mesh.text import printable

# The major version of the documents' shape (docs/schema/kubectl-mesh.v1.schema.json): within
# it fields are added, never renamed or removed.
SCHEMA_VERSION = "v1"

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
PLANNED, APPLIED, UNCHANGED, FAILED = "planned", "applied", "unchanged", "failed"

_SYMBOLS = {PASS: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}
_COLOURS = {PASS: "32", WARN: "33", FAIL: "31", SKIP: "90"}
_STEP_SYMBOLS = {PLANNED: "~", APPLIED: "✓", UNCHANGED: "=", FAILED: "✗"}
_STEP_COLOURS = {PLANNED: "36", APPLIED: "32", UNCHANGED: "90", FAILED: "31"}
# Marks for a terminal that cannot show the ones above (non-UTF-8 locale, PYTHONIOENCODING=ascii).
_ASCII_SYMBOLS = {PASS: "[ok]", WARN: "[!]", FAIL: "[x]", SKIP: "[-]"}
_ASCII_STEP_SYMBOLS = {PLANNED: "[~]", APPLIED: "[ok]", UNCHANGED: "[=]", FAILED: "[x]"}
# Typography our own messages use, spelled in ASCII; anything else unencodable is escaped.
_ASCII_SPELLING = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...",
                                 "→": "->", "×": "x", "≤": "<=", "≥": ">=", "µ": "u", "✓": "[ok]", "✗": "[x]"})


@dataclass
class Check:
    id: str
    category: str
    subject: str
    result: str
    message: str
    hint: str = ""
    # Extra fields a command adds to the JSON (e.g. a finding's level and Istio code).
    data: dict[str, Any] = field(default_factory=dict)
    # A heading the text output groups checks under (e.g. "Namespace my-app" for verify -A);
    # not in the JSON, where the data says which namespace a check is about.
    section: str = ""

    def as_dict(self) -> dict:
        base = {
            "id": self.id,
            "category": self.category,
            "subject": self.subject,
            "result": self.result,
            "message": self.message,
            "hint": self.hint,
        }
        base.update(self.data)
        return base


@dataclass
class Step:
    action: str
    target: str
    command: str
    reason: str
    status: str = PLANNED
    # Unified diff of the object, shown under --dry-run; not part of the JSON contract's keys
    # but included there as "diff" when present.
    diff: str = ""
    # The command that puts back the object as it was before this step changed it.
    restore: str = ""

    def as_dict(self) -> dict:
        base = {
            "action": self.action,
            "target": self.target,
            "command": self.command,
            "reason": self.reason,
            "status": self.status,
        }
        if self.diff:
            base["diff"] = self.diff
        if self.restore:
            base["restore"] = self.restore
        return base


@dataclass
class Report:
    title: str = ""
    checks: list[Check] = field(default_factory=list)
    plan: list[Step] = field(default_factory=list)
    # Command-specific structured data, merged into the JSON/YAML document.
    data: dict[str, Any] = field(default_factory=dict)
    # Lines of free text shown before the checks in text mode (e.g. a table).
    text: list[str] = field(default_factory=list)
    # A safety check refused the change (exit 3).
    refused: bool = False
    # Set when a check failing should not fail the command (e.g. diagnose --fail-on).
    fail_override: bool | None = None
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    # An environment problem met part-way (e.g. a rollout wait timed out): the
    # report is still shown, and the exit code is the error's.
    error: errors.MeshError | None = None
    # The safety checks that refused (see `refuse`); a refusal set by `refused = True`
    # alone is attributed to the report's failed checks.
    refused_by: list[Check] = field(default_factory=list)
    # The command path ("canary promote") and --dry-run, for the document's envelope.
    command: str = ""
    dry_run: bool = False

    def add(self, *checks: Check) -> None:
        self.checks.extend(checks)

    def refuse(self, check: Check) -> None:
        """Add a safety check that refuses the change (exit 3; --force overrides)."""
        self.add(check)
        self.refused_by.append(check)
        self.refused = True

    @property
    def refusals(self) -> list[Check]:
        """The checks that refused: one at least for every refusal, raised ones included."""
        if not self.refused and not isinstance(self.error, errors.Refused):
            return []
        found = list(self.refused_by) or [c for c in self.checks if c.result == FAIL]
        if isinstance(self.error, errors.Refused):
            found.append(refusal_check(self.error))
        return found

    @property
    def failed(self) -> bool:
        if self.fail_override is not None:
            return self.fail_override
        return any(c.result == FAIL for c in self.checks) or any(s.status == FAILED for s in self.plan)

    @property
    def success(self) -> bool:
        return not self.refused and not self.failed and self.error is None

    @property
    def exit_code(self) -> int:
        if self.refused:
            return errors.REFUSED
        if self.error is not None:
            return self.error.exit_code
        return errors.CHECK_FAILED if self.failed else errors.OK

    def as_dict(self) -> dict:
        refusals = self.refusals
        doc = {
            "schemaVersion": SCHEMA_VERSION,
            "command": self.command,
            "success": self.success,
            "refused": bool(refusals),
            "refusedBy": [c.as_dict() for c in refusals],
            "dryRun": self.dry_run,
            "checks": [c.as_dict() for c in self.checks],
            "plan": [s.as_dict() for s in self.plan],
        }
        if self.error is not None:  # a raised refusal is both: refused, and stopped by an error
            doc["error"] = self.error.as_dict()
        for key, value in self.data.items():
            doc.setdefault(key, value)
        return doc


def gate(report: Report, force: bool, check_id: str, category: str, subject: str, message: str,
         hint: str = "", data: dict | None = None) -> Check:
    """A safety check that did not pass: it refuses the change (exit 3) unless --force,
    which turns it into a warning and lets the change go ahead."""
    check = Check(check_id, category, subject, WARN if force else FAIL, message, hint, dict(data or {}))
    if force:
        report.add(check)
    else:
        report.refuse(check)
    return check


def use_colour(no_colour: bool, stream=None) -> bool:
    """Colour only on a terminal that shows it: not piped, not NO_COLOR, not TERM=dumb."""
    stream = stream or sys.stdout
    if no_colour or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def unicode_ok(stream=None) -> bool:
    """Can the stream encode the marks (✓ ✗)? Not under a C/POSIX or Latin-1 locale, nor
    PYTHONIOENCODING=ascii."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗—".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def safe_stdout(stream=None) -> None:
    """Never a UnicodeEncodeError on output: what the terminal's encoding cannot show is
    escaped (\\u2713) instead. stderr already does this (Python's default there)."""
    stream = stream or sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None and not unicode_ok(stream):
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")


def to_ascii(text: str) -> str:
    return text.translate(_ASCII_SPELLING)


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def render_text(report: Report, colour: bool = False, ascii_only: bool = False) -> str:
    """The report for a terminal. Names, messages and annotations come from the cluster
    or from manifests: every piece is shown with its control characters escaped
    (text.printable), so no object can move the cursor, clear the screen or forge a
    line; only the renderer's own line breaks and colours reach the terminal. With
    `ascii_only`, the marks and our typography in ASCII."""
    out = printable
    symbols = _ASCII_SYMBOLS if ascii_only else _SYMBOLS
    step_symbols = _ASCII_STEP_SYMBOLS if ascii_only else _STEP_SYMBOLS
    lines: list[str] = []
    if report.title:
        lines.append(out(report.title))
    lines.extend(out(line) for line in report.text)
    if report.plan:
        if lines:
            lines.append("")
        lines.append("Plan:")
        for step in report.plan:
            mark = _paint(step_symbols.get(step.status, "?"), _STEP_COLOURS.get(step.status, "0"), colour)
            lines.append(f"{mark} {out(step.action)} {out(step.target)}: {out(step.reason)} [{out(step.status)}]")
            if step.command:
                lines.append(f"    $ {out(step.command)}")
            if step.diff:
                lines.extend("    " + out(line) for line in step.diff.rstrip("\n").splitlines())
            if step.restore:
                lines.append(f"    restore: {out(step.restore)}")
    if report.checks:
        if lines:
            lines.append("")
        current = None
        section = ""
        for check in report.checks:
            if check.section != section:
                section, current = check.section, None
                lines.extend(["", out(section)] if lines and lines[-1] != "" else [out(section)])
            if check.category != current and len({c.category for c in report.checks}) > 1:
                current = check.category
                lines.append(out(current))
            mark = _paint(symbols.get(check.result, "?"), _COLOURS.get(check.result, "0"), colour)
            lines.append(f"{mark} {out(check.message)}")
            if check.result in (WARN, FAIL) and check.hint:
                for hint_line in str(check.hint).split("\n"):
                    lines.append(f"    {out(hint_line)}")
    for note in report.notes:
        lines.append(out(note))
    summary = report.summary or default_summary(report)
    if summary:
        if lines:
            lines.append("")
        lines.append(out(summary))
    text = "\n".join(lines) + "\n"
    return to_ascii(text) if ascii_only else text


def default_summary(report: Report) -> str:
    counts = {r: sum(1 for c in report.checks if c.result == r) for r in (PASS, WARN, FAIL)}
    parts = []
    if report.checks:
        warnings = f"{counts[WARN]} warning{'' if counts[WARN] == 1 else 's'}"
        parts.append(f"{counts[PASS]} passed, {warnings}, {counts[FAIL]} failed")
    if report.plan:
        by_status: dict[str, int] = {}
        for step in report.plan:
            by_status[step.status] = by_status.get(step.status, 0) + 1
        parts.append(", ".join(f"{n} {status}" for status, n in by_status.items()))
    if report.refused:
        parts.append("refused (use --force to override)")
    return "; ".join(parts)


def dry_run_summary(plan: list[Step]) -> str:
    planned = sum(1 for step in plan if step.status == PLANNED)
    return f"dry run: {planned} change{'' if planned == 1 else 's'} planned, nothing changed"


def render(report: Report, output: str, colour: bool = False, *, unicode: bool | None = None) -> str:
    """The report as `output` (text, json or yaml) for stdout; `unicode` (default: what stdout
    can encode) chooses between the marks and ASCII, and between UTF-8 and escapes in JSON/YAML,
    so the document stays exact on any terminal."""
    if unicode is None:
        safe_stdout()  # what goes to stdout next: an ASCII or Latin-1 terminal gets escapes, never an error
        unicode = unicode_ok()
    if output in ("json", "yaml"):
        return dump(report.as_dict(), output, unicode=unicode)
    return render_text(report, colour, ascii_only=not unicode)


def dump(document: dict, output: str, *, unicode: bool = True) -> str:
    if output == "json":
        return to_json(document) if unicode else json.dumps(document, indent=2, ensure_ascii=True) + "\n"
    import yaml  # only the yaml output pays for the import

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=unicode)


def to_json(document: dict) -> str:
    """Indented JSON, as json.dumps(indent=2, ensure_ascii=False) writes it, by a C
    encoder (json's own is pure Python once it indents): a large diagnose has
    megabytes to write."""
    import msgspec

    try:
        return msgspec.json.format(msgspec.json.encode(document), indent=2).decode() + "\n"
    except (TypeError, ValueError, OverflowError):  # what msgspec will not encode as json would
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def refusal_check(error: errors.MeshError) -> Check:
    """A refusal raised as an error (not met as a check), in the shape of a refusing check."""
    return Check("refused", "safety", "", FAIL, error.message, "--force overrides where the command takes it")


def error_document(error: errors.MeshError, *, command: str = "", dry_run: bool = False) -> dict:
    """The document of a command that ended in an error before it had a report (a raised
    refusal is also `refused`, with the refusing check in `refusedBy`)."""
    report = Report(error=error, command=command, dry_run=dry_run)
    return report.as_dict()


def render_error(error: errors.MeshError, output: str, *, command: str = "", dry_run: bool = False) -> str | None:
    """What goes to stdout for an error in json/yaml mode (text mode: nothing)."""
    if output not in ("json", "yaml"):
        return None
    safe_stdout()
    return dump(error_document(error, command=command, dry_run=dry_run), output, unicode=unicode_ok())
