"""benchmarks/hostile_inputs.py works (a smoke run of a few of its cases; the full run,
with its figures, is for the report)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "hostile_inputs.py"


def test_the_hostile_inputs_script_runs_and_every_case_holds():
    result = subprocess.run([sys.executable, str(SCRIPT), "--no-cluster", "--only", "YAML"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("hostile inputs, 0 failed")
    assert "alias bomb" in result.stdout
