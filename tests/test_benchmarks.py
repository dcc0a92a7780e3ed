"""Each benchmark script runs (at a tiny size: the real sizes take minutes and are not for CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in ("harness.py", "realistic.py"))


def test_every_row_of_the_speed_table_has_a_script():
    assert len(SCRIPTS) >= 2


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke(script):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    # A speed row prints its ratio; the hostile-input table its verdict.
    assert "A/B" in result.stdout or "growth" in result.stdout or " hostile inputs, 0 failed" in result.stdout, \
        result.stdout
