"""Keep the HTTP benchmarks runnable: a one-second run must complete without errors (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("script", "label"), [("bench_messages.py", "helpline (SQLite)"), ("bench_sms.py", "helpline SMS (SQLite)")])
def test_benchmark_runs_and_prints_both_figures(script: str, label: str) -> None:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / script), "--seconds", "1", "--concurrency", "4"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    bare = next(line for line in lines if line.startswith("bare aiohttp handler"))
    real = next(line for line in lines if line.startswith(label))
    for line in (bare, real):
        assert "errors=0" in line and "n=0 " not in line
    assert "of the bare handler" in result.stdout
