"""The methods benchmark script keeps working: ``--quick`` (tiny model, 1 epoch) writes its JSON
and report, and a second call resumes instead of measuring again."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_writes_raw_json_and_a_report_and_resumes(tmp_path):
    cmd = [sys.executable, "bench/methods.py", "--quick", "--methods", "lift", "ltuning-prompt", "prompt",
           "--out", str(tmp_path)]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    doc = json.loads((tmp_path / "methods.json").read_text())
    assert [c["method"] for c in doc["cells"]] == ["lift", "ltuning-prompt", "prompt"]
    assert all(c["trainable_parameters"] > 0 and 0 <= c["accuracy"] <= 1 for c in doc["cells"])
    report = (tmp_path / "methods.md").read_text()
    assert "L-Tuning prompt vs Prompt tuning" in report and doc["machine"] in report
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "every cell is measured" in again.stderr
