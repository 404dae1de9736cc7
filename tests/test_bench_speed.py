"""The speed benchmark keeps working: ``--quick`` (tiny model, 1 epoch) measures both training
recipes, both ways of predicting and an end-to-end run, and writes its JSON and report."""

import json

import pytest

from bench_helpers import run_quick


@pytest.mark.slow
def test_quick_speed_benchmark_measures_every_comparison(tmp_path):
    run_quick("speed.py", tmp_path)
    doc = json.loads((tmp_path / "speed.json").read_text())
    plain, ours = doc["training"]
    assert (plain["variant"], ours["variant"]) == ("plain", "ours")
    assert plain["train_tokens"] == ours["train_tokens"] > 0  # the same rows, real tokens only
    for way in ("scoring", "whole_answer_scoring", "per_row_generate"):
        assert ours["predict"][way]["rows_per_s"] > 0 and ours["predict"][way]["first_pass_rows_per_s"] > 0
    assert doc["end_to_end"]["wall_seconds"] > 0
    report = (tmp_path / "speed.md").read_text()
    assert "Speed-up" in report and doc["machine"] in report
