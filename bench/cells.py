"""What every benchmark cell does: one ``python -m lift_core run`` in a fresh process, as a user
would run it, in a throw-away workspace; and the commit the cell was measured with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str]) -> tuple[dict, float]:
    """``lift_core run`` with ``args``; its metrics.json and the wall time in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "lift_core", "run", *args, "--out", tmp]
        env = dict(os.environ, LIFT_HOME=str(Path(tmp) / "ws"))
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads((Path(tmp) / "metrics.json").read_text()), wall


def commit() -> str:
    """The code a cell was measured with (cells of one table should share it: it sets the times)."""
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"
