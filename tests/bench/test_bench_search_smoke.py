"""Keep the search benchmark runnable: a tiny SQLite run must finish and print both figures.

No timing is asserted: the machines are noisy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_search_benchmark_runs_and_prints_search_and_raw_figures() -> None:
    script = Path(__file__).parent / "bench_search.py"
    result = subprocess.run(
        [sys.executable, str(script), "--articles", "2000", "--rounds", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("SQLite "))
    figures = r"p50 \d+\.\d+ ms p99 \d+\.\d+ ms"
    assert "2000 articles" in line
    assert re.search(r"search " + figures, line), line
    assert re.search(r"raw FTS " + figures, line), line
    assert "target: p99 under 10 ms on SQLite" in result.stdout
