"""Text output on every terminal: no colour on TERM=dumb, ASCII marks where the
encoding cannot show ✓/✗, never a UnicodeEncodeError; JSON stays exact."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from kubectl_mesh.report import (
    APPLIED,
    FAIL,
    PASS,
    SKIP,
    WARN,
    Check,
    Report,
    Step,
    render,
    safe_stdout,
    unicode_ok,
    use_colour,
)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _report() -> Report:
    report = Report(title="Verifying namespace x")
    report.add(Check("a", "c", "s", PASS, "deployment/web: 2/2 pods have istio-proxy"),
               Check("b", "c", "s", WARN, "Yes — automatic", "a hint"),
               Check("c", "c", "s", FAIL, "broken", "fix it"),
               Check("d", "c", "s", SKIP, "skipped"))
    report.plan.append(Step("label", "namespace/x", "kubectl label ...", "enable injection", APPLIED))
    return report


def test_dumb_terminal_gets_no_colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_colour(False, _Tty()) is True
    monkeypatch.setenv("TERM", "dumb")
    assert use_colour(False, _Tty()) is False


def test_ascii_marks_when_the_terminal_cannot_show_them():
    text = render(_report(), "text", unicode=False)
    text.encode("ascii")  # nothing left that ASCII cannot carry
    lines = text.splitlines()
    assert "[ok] label namespace/x: enable injection [applied]" in lines
    assert "[ok] deployment/web: 2/2 pods have istio-proxy" in lines
    assert "[!] Yes - automatic" in lines
    assert "[x] broken" in lines
    assert "[-] skipped" in lines


def test_unicode_marks_by_default():
    text = render(_report(), "text", unicode=True)
    assert "✓ deployment/web: 2/2 pods have istio-proxy" in text
    assert "✗ broken" in text


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_documents_stay_exact_in_ascii(output):
    import yaml

    doc = render(_report(), output, unicode=False)
    doc.encode("ascii")
    parsed = json.loads(doc) if output == "json" else yaml.safe_load(doc)
    assert parsed["checks"][1]["message"] == "Yes — automatic"


@pytest.mark.parametrize("encoding,expected", [("utf-8", True), ("ascii", False), ("latin-1", False),
                                               ("ANSI_X3.4-1968", False)])
def test_unicode_ok_follows_the_encoding(encoding, expected):
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    assert unicode_ok(stream) is expected


def test_safe_stdout_escapes_instead_of_raising():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    safe_stdout(stream)
    stream.write("naïve ✓\n")
    stream.flush()
    assert raw.getvalue() == b"na\\xefve \\u2713\n"


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"},
                                 {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}])
def test_the_cli_on_a_non_utf8_terminal_prints_ascii_and_no_traceback(env):
    """`advise --offline` prints the guide's table (an em dash in it) and check marks."""
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "PYTHONIOENCODING", "PYTHONUTF8")}
    result = subprocess.run([sys.executable, "-m", "kubectl_mesh", "advise", "--offline", "--need", "mtls"],
                            capture_output=True, env={**base, **env})
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    result.stdout.decode("ascii")
    assert b"Yes - automatic with sidecar" in result.stdout
    assert b"[-] cluster not consulted: --offline" in result.stdout
