"""The accuracy suite keeps working: ``--quick`` (tiny model, 1 epoch, one classification set and
one regression function) writes its JSON, report, chart, and puts the paper's figures beside ours."""

import json

import pytest

from bench_helpers import run_quick, spy_on_baselines
from bench.accuracy import (CHEAP_FIRST, DATASETS, _cpu, cell_request, chart, checkpoint_folder, readme_block,
                            readme_blocks, report, summary)
from bench.cells import DEFAULT_OUT, README, machine, readme_marks, rebaseline, with_readme_blocks


def test_a_cell_with_other_settings_keeps_its_checkpoints_apart(tmp_path):
    default = checkpoint_folder(tmp_path, "iris", 0, "bundled", [])
    assert default.name == "accuracy-iris-seed0-bundled"  # the name stopped default cells were left under
    longer = checkpoint_folder(tmp_path, "iris", 0, "bundled", ["--epochs", "16"])
    assert longer != default and longer == checkpoint_folder(tmp_path, "iris", 0, "bundled", ["--epochs", "16"])
    assert longer != checkpoint_folder(tmp_path, "iris", 0, "bundled", ["--epochs", "24"])


@pytest.mark.slow
def test_quick_accuracy_suite_reports_ours_beside_the_paper(tmp_path):
    run_quick("accuracy.py", tmp_path)
    doc = json.loads((tmp_path / "accuracy.json").read_text())
    assert [(c["data"], c["task"]) for c in doc["cells"]] == [("iris", "classification"), ("linear_1d", "regression")]
    report = (tmp_path / "accuracy.md").read_text()
    assert "| iris | 1 |" in report and "96.67" in report  # ours beside LIFT/GPT-J's published iris accuracy
    assert "| linear_1d | 1 |" in report and "0.081" in report
    assert "xychart-beta" in report and (tmp_path / "accuracy.html").exists()
    assert all(c["baseline_params"]["svm"] for c in doc["cells"])  # chosen on the validation rows
    assert all(c["resumed_at_steps"] == [] and c["wall_seconds"] > 0 for c in doc["cells"])
    iris = doc["cells"][0]  # each epoch's validation is kept, as the README cites it (1 epoch here)
    assert [e["epoch"] for e in iris["epochs"]] == [1] and 0 <= iris["epochs"][0]["val_accuracy"] <= 1
    assert iris["n_val"] > 0 and iris["tokens_per_s"] > 0
    assert list((tmp_path / "checkpoints").iterdir()) == []  # kept while a cell trains, removed once recorded
    assert "settings chosen on each seed's validation rows" in report and "scikit-learn's defaults" not in report


@pytest.mark.slow
def test_quick_sample_size_curve_cuts_the_training_rows(tmp_path):
    run_quick("sample_size.py", tmp_path)
    doc = json.loads((tmp_path / "sample_size.json").read_text())
    assert [(c["rows"], c["n_train"], c["epochs"]) for c in doc["cells"]] == [(8, 8, 1), (16, 16, 1)]
    report = (tmp_path / "sample_size.md").read_text()
    assert "| 8 | 1 | 1 |" in report and "| 16 | 1 | 1 |" in report and (tmp_path / "sample_size.html").exists()


def test_the_suite_measures_every_data_set_once_cheapest_first():
    assert sorted(CHEAP_FIRST) == sorted(DATASETS) and len(set(CHEAP_FIRST)) == len(CHEAP_FIRST)
    assert CHEAP_FIRST.index("iris") < CHEAP_FIRST.index("moons") < CHEAP_FIRST.index("digits")


def test_one_seed_gets_no_verdict_against_the_paper():
    def cell(data, seed, accuracy):
        return {"data": data, "seed": seed, "task": "classification", "lift": {"accuracy": accuracy},
                "train_seconds": 1.0, "baselines": {"logreg": 1.0}}

    rows = {r["data"]: r for r in summary([cell("iris", 0, 0.95), cell("iris", 1, 0.99), cell("wine", 0, 0.10)])}
    assert rows["iris"]["within_one_std"]  # 97 ± 2 against the paper's 96.67
    assert "within_one_std" not in rows["wine"]  # one seed: no std to judge by


def test_the_report_says_which_machine_and_precision_measured_each_cell():
    """Cells of one suite can come from different CPUs, and a CPU's bf16 probe changes the figures."""
    def cell(seed, machine, bf16):
        return {"data": "iris", "seed": seed, "task": "classification", "lift": {"accuracy": 0.9},
                "learning_rate": 2e-3, "best_epoch": 8, "bf16": bf16, "train_seconds": 100.0 * (seed + 1),
                "baselines": {"logreg": 1.0}, "date": "2026-11-23T07:00:00+00:00", "commit": "abc1234",
                "machine": machine}

    doc = {"cells": [cell(0, "Xeon", True), {**cell(1, "EPYC", False), "resumed_at_steps": [81, 900]}],
           "command": "python bench/accuracy.py", "settings": {"model": "bundled", "extra": [], "datasets": ["iris"]}}
    text = report(doc)
    assert "Xeon (1 cell); EPYC (1 cell)" in text
    assert "| 150 (2 machines: see the cells) |" in text  # a mean over two CPUs' seconds is flagged
    assert "| iris | 0 | 0.9000 | 8 | 2.00e-03 | yes | 100 |" in text
    assert "| iris | 1 | 0.9000 | 8 | 2.00e-03 | no | 200 (carried on at step 81, 900) |" in text  # in 3 parts


def test_the_chart_puts_regression_beside_the_paper_too():
    def cell(data, task, lift, baselines):
        return {"data": data, "seed": 0, "task": task, "lift": lift, "train_seconds": 1.0, "baselines": baselines}

    fig = chart(summary([cell("iris", "classification", {"accuracy": 0.95}, {"logreg": 1.0}),
                         cell("linear_1d", "regression", {"rae": 0.105, "rae_filtered": 0.1}, {"ridge": 0.008})]))
    bars = {(t.name, t.yaxis): list(t.y) for t in fig.data}
    assert bars[("ours: LIFT", "y")] == [95.0] and bars[("paper: LIFT/GPT-J 6B", "y")] == [96.67]
    assert bars[("ours: LIFT", "y2")] == [0.105] and bars[("paper: LIFT/GPT-J 6B", "y2")] == [0.081]
    assert bars[("ours: best baseline", "y2")] == [0.008]
    assert fig.layout.yaxis.range == (0, 100) and fig.layout.yaxis2.title.text == "RAE"


def test_the_regression_report_says_which_functions_beat_gptj_and_shows_no_spread_for_one_seed():
    """The paper gives regression no std, so the report compares with GPT-J's mean, function by
    function; one seed is shown as one value, not as "± 0.000", which would claim no spread."""
    def cell(data, seed, rae):
        return {"data": data, "seed": seed, "task": "regression", "lift": {"rae": rae, "rae_filtered": rae},
                "train_seconds": 1.0, "baselines": {"ridge": 0.01}, "date": "2026-11-23T07:00:00+00:00",
                "machine": "EPYC"}

    doc = {"cells": [cell("linear_1d", 0, 0.105), cell("quadratic_1d", 0, 0.10), cell("quadratic_1d", 1, 0.11)],
           "command": "python bench/accuracy.py",
           "settings": {"model": "bundled", "extra": [], "datasets": ["linear_1d", "quadratic_1d"]}}
    text = report(doc)
    assert "| linear_1d | 1 | 0.105 (one seed) |" in text and "**worse by 0.024**" in text  # GPT-J: 0.081
    assert "| quadratic_1d | 2 | 0.105 ± 0.005 |" in text and "better by 0.006" in text  # GPT-J: 0.111
    assert "**1 of 2** functions" in text
    # the paper's best baseline beside ours, at the same precision (linear_1d: GP .008; quadratic_1d: Poly3 .008)
    assert "| Ridge regression 0.010 | GP 0.008 | 0.081 | 0.064 |" in text
    assert "| Ridge regression 0.010 | Poly3 0.008 | 0.111 | 0.132 |" in text
    assert 'title "Regression RAE, lower is better' in text and "bar [0.105, 0.105]" in text
    assert "line [0.081, 0.111]" in text and 'y-axis "RAE" 0 --> 0.2' in text


def test_the_machine_label_tells_two_cpus_of_one_name_apart():
    def cpuinfo(family, model, flags):
        block = f"processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: {family}\nmodel\t\t: {model}\nflags\t\t: {flags}\n"
        return block + "\n" + block.replace("processor\t: 0", "processor\t: 1")

    zen1 = machine(cpuinfo(23, 49, "fpu sse avx avx2 fma"))
    zen4 = machine(cpuinfo(25, 17, "fpu avx2 avx512f avx512_bf16"))
    assert "(AMD EPYC, family 23 model 49, AVX2)" in zen1
    assert "(AMD EPYC, family 25 model 17, AVX-512 bf16)" in zen4
    assert "AMX" in machine(cpuinfo(6, 143, "avx2 avx512f avx512_bf16 amx_bf16 amx_tile"))
    assert "cores (" in machine("")  # no /proc/cpuinfo (not Linux): the platform's name instead


def test_rebaseline_measures_old_cells_baselines_again_once_and_keeps_their_lift_figures():
    old = {"data": "iris", "seed": 0, "task": "classification", "lift": {"accuracy": 0.9}, "train_seconds": 1.0,
           "baselines": {"svm": 0.5}, "date": "2026-11-20T07:00:00+00:00", "machine": "EPYC"}
    doc = {"cells": [old, {**old, "seed": 1}], "command": "python bench/accuracy.py",
           "settings": {"model": "bundled", "extra": [], "datasets": ["iris"]}}
    assert "**Baselines:** scikit-learn's defaults, measured before" in report(doc)
    written = []
    assert rebaseline(doc, lambda c: c["seed"] == 0, cell_request, written.append) == 1
    cell = doc["cells"][0]
    assert cell["lift"] == {"accuracy": 0.9} and len(written) == 1
    assert cell["baselines"]["svm"] > 0.85 and {"majority", "logreg", "gbt"} <= set(cell["baselines"])
    assert set(cell["baseline_params"]["svm"]) == {"model__estimator__C", "model__estimator__gamma"}
    assert "baseline_params" not in doc["cells"][1]  # seed 1 was not asked for
    assert rebaseline(doc, lambda c: c["seed"] == 0, cell_request, written.append) == 0  # done once
    text = report(doc)
    assert "Baselines measured again** for 1 cells" in text and "except in 1 of 2 cells: scikit-learn's defaults" in text


def test_the_readme_tables_are_those_the_stored_cells_give():
    """The README's results tables and charts are written by ``--readme``: a hand edit of a figure,
    or cells added without writing the README again, fails here (run ``bench/accuracy.py --readme``)."""
    text = README.read_text()
    doc = json.loads((DEFAULT_OUT / "accuracy.json").read_text())
    assert with_readme_blocks(text, "accuracy.py", readme_blocks(doc)) == text


def test_the_readme_block_says_how_each_set_stands_against_gptj_and_on_which_cpu():
    def cell(data, seed, accuracy, machine="2 cores (AMD EPYC, family 25 model 17, AVX-512 bf16), Linux, Python 3.11"):
        return {"data": data, "seed": seed, "task": "classification", "lift": {"accuracy": accuracy},
                "train_seconds": 100.0 + seed, "baselines": {"svm": 0.99}, "machine": machine, "best_epoch": 3}

    xeon = "2 cores (Intel(R) Xeon(R) Processor), Linux, Python 3.11.7"
    doc = {"settings": {"model": "bundled"},
           "cells": [cell("iris", 0, 0.90, xeon), cell("iris", 1, 0.92), cell("wine", 0, 0.60), cell("wine", 1, 0.62),
                     cell("moons", 0, 0.995), cell("breast_cancer", 0, 0.96)]}
    lines = readme_block(doc, "classification")
    row = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and " | " in line}
    assert "| 91.00 ± 1.00 | 96.67 | 99.00 (RBF SVM) | **no**, 5.67 short | 100 (Xeon), 101 (EPYC family 25) |" in row["iris"]
    assert "**no**, 32.52 short" in row["wine"]
    assert "99.50 (one seed) | 99.58 |" in row["moons"] and "one seed, no std yet (-0.08)" in row["moons"]
    assert "| not reported |" in row["breast_cancer"] and "no GPT-J figure to compare" in row["breast_cancer"]
    assert "    bar [99.5, 91.0, 61.0]" in lines  # the paper's order; breast cancer has no GPT-J figure
    assert _cpu("2 cores (AMD EPYC, family 23 model 49, AVX2), Linux, Python 3.11.7") == "EPYC family 23"


def test_writing_the_readme_keeps_its_prose_and_names_missing_markers():
    doc = {"settings": {"model": "bundled"}, "cells": [
        {"data": "iris", "seed": 0, "task": "classification", "lift": {"accuracy": 0.9}, "train_seconds": 1.0,
         "baselines": {"svm": 0.99}, "machine": "EPYC"}]}
    prose = "intro\n{}\nold table\n{}\nmiddle\n{}\n{}\nend"
    marks = [*readme_marks("classification results", "accuracy.py"), *readme_marks("regression results", "accuracy.py")]
    out = with_readme_blocks(prose.format(*marks), "accuracy.py", readme_blocks(doc))
    assert out.startswith("intro\n") and "\nmiddle\n" in out and out.endswith("\nend") and "old table" not in out
    assert "| iris | 1 | 90.00 (one seed) |" in out
    assert with_readme_blocks(out, "accuracy.py", readme_blocks(doc)) == out  # written twice, the same
    with pytest.raises(ValueError, match="no markers for the regression results"):
        with_readme_blocks(prose.format(*marks[:2], "", ""), "accuracy.py", readme_blocks(doc))


def test_sample_size_cells_have_their_baselines_measured_again_on_their_own_cut_of_rows(monkeypatch):
    from bench.sample_size import cell_request as cut_request, report as curve_report

    seen = spy_on_baselines(monkeypatch)
    cell = {"data": "iris", "rows": 16, "seed": 0, "n_train": 16, "lift": 0.4, "baselines": {"svm": 0.3},
            "date": "2026-11-22T07:00:00+00:00", "machine": "EPYC"}
    doc = {"cells": [cell], "command": "python bench/sample_size.py", "settings": {"model": "bundled", "extra": []}}
    assert rebaseline(doc, lambda c: True, cut_request, lambda d: None) == 1
    assert seen == [16] and cell["lift"] == 0.4 and set(cell["baseline_params"]["svm"])
    assert "by `python bench/sample_size.py --rebaseline`" in curve_report(doc)


def test_the_readme_sample_size_tables_are_those_the_stored_cells_give():
    from bench.sample_size import readme_blocks as curve_blocks

    text = README.read_text()
    blocks = curve_blocks(json.loads((DEFAULT_OUT / "sample_size.json").read_text()))
    assert with_readme_blocks(text, "sample_size.py", blocks) == text


def test_the_sample_size_reference_baseline_breaks_a_tie_at_every_row_by_the_whole_curve():
    from bench.sample_size import curves

    def cell(rows, seed, knn, svm):
        return {"data": "moons", "rows": rows, "seed": seed, "lift": 0.5, "baselines": {"majority": 1.0, "knn": knn,
                                                                                         "svm": svm}}

    cells = [cell(16, 0, 0.8, 0.9), cell(16, 1, 0.8, 0.9), cell(64, 0, 1.0, 1.0), cell(64, 1, 1.0, 1.0)]
    assert curves(cells, "moons")["best"] == "svm"  # tied with every row; better with 16 (not first by name)
    assert curves([cell(64, 0, 1.0, 0.9)], "moons")["best"] == "knn"  # the majority class is no reference
