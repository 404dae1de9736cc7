"""The methods benchmark script keeps working: ``--quick`` (tiny model, 1 epoch) writes its JSON
and report, and a second call resumes instead of measuring again."""

import json

import pytest

from bench_helpers import run_quick


@pytest.mark.slow
def test_quick_benchmark_writes_raw_json_and_a_report_and_resumes(tmp_path):
    methods = ("--methods", "lift", "ltuning-prompt", "prompt")
    run_quick("methods.py", tmp_path, *methods)
    doc = json.loads((tmp_path / "methods.json").read_text())
    assert [c["method"] for c in doc["cells"]] == ["lift", "ltuning-prompt", "prompt"]
    assert all(c["trainable_parameters"] > 0 and 0 <= c["accuracy"] <= 1 for c in doc["cells"])
    report = (tmp_path / "methods.md").read_text()
    assert "L-Tuning prompt vs Prompt tuning" in report and doc["machine"] in report
    again = run_quick("methods.py", tmp_path, *methods)
    assert "every cell is measured" in again.stderr

