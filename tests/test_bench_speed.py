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


@pytest.mark.slow
def test_quick_scoring_batch_benchmark_times_each_batch_size_in_both_states(tmp_path):
    run_quick("scoring_batch.py", tmp_path)
    doc = json.loads((tmp_path / "scoring-batch.json").read_text())
    (iris,) = doc["datasets"]
    assert [(r["state"], r["batch"], r["way"]) for r in iris["results"]] == [
        (state, batch, way) for state in ("validation", "prediction") for batch in (2, 4, "default")
        for way in ("scoring", "generation")]
    assert [r["rows_a_forward"] for r in iris["results"][:6:2]] == [2, 4, 8]  # 8 rows: the default takes all
    assert all(r["ms_a_row"] > 0 for r in iris["results"])
    assert "| default | 8 |" in (tmp_path / "scoring-batch.md").read_text()
