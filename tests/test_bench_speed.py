"""The speed benchmark keeps working: ``--quick`` (tiny model, 1 epoch) measures both training
recipes, both ways of predicting and an end-to-end run, and writes its JSON and report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_speed_benchmark_measures_every_comparison(tmp_path):
    proc = subprocess.run([sys.executable, "bench/speed.py", "--quick", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "speed.json").read_text())
    plain, ours = doc["training"]
    assert (plain["variant"], ours["variant"]) == ("plain", "ours")
    assert plain["train_tokens"] == ours["train_tokens"] > 0  # the same rows, real tokens only
    assert ours["predict"]["scoring"]["rows_per_s"] > 0 and ours["predict"]["per_row_generate"]["rows_per_s"] > 0
    assert doc["end_to_end"]["wall_seconds"] > 0
    report = (tmp_path / "speed.md").read_text()
    assert "Speed-up" in report and doc["machine"] in report
