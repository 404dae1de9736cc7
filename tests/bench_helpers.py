"""Running a benchmark script's ``--quick`` check the way a user would: a fresh process."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so tests can import the scripts' report functions from bench/


def run_quick(script: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``python bench/<script> --quick --out <out> [args]``; fails the test with its stderr if it fails."""
    proc = subprocess.run([sys.executable, f"bench/{script}", "--quick", "--out", str(out), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def spy_on_baselines(monkeypatch) -> list[int]:
    """Count the baselines measured in-process: each call's number of training rows, in order."""
    import lift_core.baselines

    real, seen = lift_core.baselines.run_baselines, []

    def spy(task, frame, features, target, train_idx, *args, **kwargs):
        seen.append(len(train_idx))
        return real(task, frame, features, target, train_idx, *args, **kwargs)

    monkeypatch.setattr(lift_core.baselines, "run_baselines", spy)
    return seen
