"""The methods benchmark script keeps working: ``--quick`` (tiny model, 1 epoch) writes its JSON
and report, and a second call resumes instead of measuring again."""

import json

import pytest

from bench_helpers import run_quick, spy_on_baselines
from bench.methods import report


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



def test_the_report_counts_where_l_tuning_beat_the_plain_method():
    def cell(data, method, seed, accuracy):
        return {"data": data, "method": method, "seed": seed, "accuracy": accuracy, "train_seconds": 1.0,
                "trainable_parameters": 10, "n_train": 8, "n_test": 4, "baselines": {"logreg": 0.5},
                "date": "2026-11-22T00:00:00+00:00", "commit": "abc1234"}

    cells = [cell("iris", "ltuning-prefix", 0, 0.50), cell("iris", "prefix", 0, 0.75),
             cell("iris", "ltuning-prefix", 1, 0.75), cell("iris", "prefix", 1, 0.25),
             cell("iris", "ltuning-prompt", 0, 0.25), cell("iris", "prompt", 0, 0.50)]
    doc = {"cells": cells, "machine": "m", "command": "c",
           "settings": {"model": "tiny", "extra": [], "epochs": {}, "datasets": ["iris", "wine"],
                        "methods": ["ltuning-prefix", "ltuning-prompt", "prefix", "prompt"], "seeds": [0, 1]}}
    text = report(doc)
    assert "iris: L-Tuning prefix vs Prefix tuning: +0.125 (better; higher on 1 of 2 seeds: [0, 1])" in text
    assert "iris: L-Tuning prompt vs Prompt tuning: -0.250 (worse; higher on 0 of 1 seeds: [0])" in text
    assert "wine: L-Tuning prefix vs Prefix tuning: not yet measured" in text
    assert "higher in 1 of 2 (data set, pair) comparisons measured" in text


def test_rebaseline_measures_each_seeds_split_once_for_all_its_methods(monkeypatch):
    from bench.cells import rebaseline
    from bench.methods import cell_request

    seen = spy_on_baselines(monkeypatch)
    old = {"data": "iris", "seed": 0, "accuracy": 0.9, "baselines": {"svm": 0.5}}
    doc = {"cells": [{**old, "method": "lift"}, {**old, "method": "prompt", "accuracy": 0.4},
                     {**old, "seed": 1, "method": "lift"}]}
    assert rebaseline(doc, lambda c: c["seed"] == 0, cell_request, lambda d: None) == 2
    assert seen == [96]  # one split, measured once for both methods
    first, second, other = doc["cells"]
    assert first["baselines"] == second["baselines"] and first["baselines"] is not second["baselines"]
    assert set(first["baseline_params"]["svm"]) and (first["accuracy"], second["accuracy"]) == (0.9, 0.4)
    assert "baseline_params" not in other
