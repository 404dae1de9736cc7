"""What the Results page's charts and tables claim, checked against hand-made results."""

import numpy as np
import pandas as pd
import pytest

from lift_core import charts
from lift_core.errors import LiftError
from lift_core.store import RunStore


def doc(lift=0.9, logreg=0.8, tree=0.7, dataset="iris", task="classification", **extra_models):
    """A metrics document shaped like run_experiment's, with one score per model."""
    metric = "accuracy" if task == "classification" else "rmse"
    models = {"lift": {metric: lift, "invalid_rate": 0.0, "best_epoch": 2}}
    for name, value in (("logreg" if task == "classification" else "ridge", logreg), ("tree", tree)):
        models[name] = {metric: value, "invalid_rate": 0.0, "fit_seconds": 0.01}
    models.update(extra_models)
    return {"task": task, "dataset": dataset, "target": "y", "classes": ["a", "b"], "models": models}


def bar_values(fig):
    bar = fig.data[0]
    return dict(zip(bar.y, bar.x))


# ------------------------------------------------------------------------- comparison bar


def test_bar_heights_are_the_stored_scores_and_lift_is_highlighted():
    fig = charts.comparison_bar([doc(lift=0.93, logreg=0.8, tree=0.95)])
    values = bar_values(fig)
    assert values == {"LIFT": 0.93, "Logistic regression": 0.8, "Decision tree": 0.95}
    bar = fig.data[0]
    assert list(bar.y) == ["Decision tree", "LIFT", "Logistic regression"]  # best first
    colors = dict(zip(bar.y, bar.marker.color))
    assert colors["LIFT"] == charts.LIFT_COLOR
    assert colors["Decision tree"] == colors["Logistic regression"] != charts.LIFT_COLOR
    assert bar.error_x.visible is False  # one run: no spread to show
    assert "Accuracy (higher is better)" in fig.layout.title.text


def test_error_bars_are_the_population_std_over_runs():
    runs = [doc(lift=0.9, logreg=0.8), doc(lift=0.8, logreg=0.8), doc(lift=1.0, logreg=0.5)]
    fig = charts.comparison_bar(runs)
    bar = fig.data[0]
    stds = dict(zip(bar.y, bar.error_x.array))
    assert bar_values(fig)["LIFT"] == pytest.approx(0.9)
    assert stds["LIFT"] == pytest.approx(np.std([0.9, 0.8, 1.0]))  # ddof=0, as LIFT reports it
    assert stds["LIFT"] == pytest.approx(0.0816496, rel=1e-5)
    assert stds["Logistic regression"] == pytest.approx(np.std([0.8, 0.8, 0.5]))
    assert bar.error_x.visible is True
    assert "mean ± std over 3 runs" in fig.layout.title.text


def test_skipped_and_failed_models_are_a_note_not_a_zero_bar():
    d = doc(task="regression", lift=1.0, logreg=2.0, tree=3.0,
            gp={"skipped": "an exact Gaussian process is O(n³)"}, svm={"error": "ValueError: boom"})
    fig = charts.comparison_bar([d])
    assert set(bar_values(fig)) == {"LIFT", "Ridge regression", "Decision tree"}
    assert list(fig.data[0].y) == ["LIFT", "Ridge regression", "Decision tree"]  # lower RMSE first
    note = fig.layout.annotations[0].text
    assert "Gaussian process: skipped: an exact Gaussian process" in note
    assert "RBF-kernel SVM: failed: ValueError: boom" in note
    assert charts.unavailable_models([d]) == {"Gaussian process": "skipped: an exact Gaussian process is O(n³)",
                                              "RBF-kernel SVM": "failed: ValueError: boom"}


def test_a_model_failing_in_some_runs_is_averaged_over_the_others_and_noted():
    runs = [doc(svm={"accuracy": 0.6}), doc(svm={"accuracy": 0.8}), doc(svm={"error": "boom"})]
    fig = charts.comparison_bar(runs)
    assert bar_values(fig)["RBF-kernel SVM"] == pytest.approx(0.7)
    assert fig.data[0].customdata[list(fig.data[0].y).index("RBF-kernel SVM")] == 2
    assert charts.unavailable_models(runs) == {"RBF-kernel SVM": "failed: boom (in 1 of 3 runs)"}


def test_comparison_bar_other_metric_and_refusals():
    d = doc(task="regression")
    d["models"]["lift"]["rae"] = 0.25
    fig = charts.comparison_bar([d], "rae")
    assert bar_values(fig) == {"LIFT": 0.25}
    assert "Ridge regression: no RAE" in fig.layout.annotations[0].text
    with pytest.raises(LiftError, match="different data sets"):
        charts.comparison_bar([doc(dataset="iris"), doc(dataset="wine")])
    with pytest.raises(LiftError, match="mix classification and regression"):
        charts.comparison_bar([doc(), doc(task="regression")])
    with pytest.raises(LiftError, match="no finished run"):
        charts.comparison_bar([])
    with pytest.raises(LiftError, match="has a R² score"):
        charts.comparison_bar([doc()], "r2")


def test_grouped_bar_has_one_trace_per_run_with_its_scores():
    fig = charts.grouped_bar([("A", doc(lift=0.9)), ("B", doc(lift=0.7, svm={"error": "x"}))])
    assert [t.name for t in fig.data] == ["A", "B"]
    assert dict(zip(fig.data[1].y, fig.data[1].x)) == {"LIFT": 0.7, "Logistic regression": 0.8,
                                                       "Decision tree": 0.7}
    assert fig.layout.annotations[0].text == "Not shown — RBF-kernel SVM in B: failed: x"
    assert fig.layout.barmode == "group"


def test_metrics_table_main_metric_first_best_first_broken_last():
    d = doc(lift=0.9, logreg=0.95, tree=0.5, gp={"skipped": "too big"})
    table = charts.metrics_table(d)
    assert list(table.columns[:2]) == ["model", "Accuracy"]
    assert list(table["model"]) == ["Logistic regression", "LIFT", "Decision tree", "Gaussian process"]
    assert table.loc[1, "Accuracy"] == 0.9
    assert table.loc[3, "note"] == "skipped: too big" and np.isnan(table.loc[3, "Accuracy"])
    assert list(charts.metrics_table(doc(task="regression")).columns[:3]) == ["model", "RMSE", "RAE"]


def test_metrics_table_shows_the_settings_a_baseline_chose_on_the_validation_rows():
    d = doc(lift=0.9, logreg=0.95)
    d["models"]["svm"] = {"accuracy": 0.8, "params": {"model__estimator__C": 100.0, "model__estimator__gamma": 1.0}}
    table = charts.metrics_table(d).set_index("model")
    assert table.loc["RBF-kernel SVM", "settings"] == "C=100.0, gamma=1.0"
    assert table.loc["LIFT", "settings"] == "" and table.loc["Logistic regression", "settings"] == ""


# ---------------------------------------------------------------------- classification views


def test_confusion_counts_sum_to_n_and_sit_in_the_right_cells():
    true = ["a", "a", "b", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "a", "c"]
    counts, rows, columns = charts.confusion_counts(true, pred, ["a", "b", "c"])
    assert counts.sum() == len(true)
    assert counts.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert rows == columns == ["a", "b", "c"]
    fig = charts.confusion_matrix(true, pred, ["a", "b", "c"])
    assert np.asarray(fig.data[0].z).tolist() == counts.tolist()
    assert "accuracy 0.667" in fig.layout.title.text


def test_confusion_counts_invalid_answers_and_typed_labels():
    # metrics.json stores classes as ints; the predictions CSV may hand them back as text
    counts, _, columns = charts.confusion_counts(["0", "1", "1"], [0, None, 1], [0, 1])
    assert columns == ["0", "1", "(invalid)"]
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1]] and counts.sum() == 3
    with pytest.raises(LiftError, match="not among the classes"):
        charts.confusion_counts(["z"], ["a"], ["a", "b"])


def test_calibration_bins_on_a_hand_made_example():
    classes = ["a", "b"]
    proba = np.array([[0.95, 0.05],   # confident a, right
                      [0.05, 0.95],   # confident b, wrong
                      [0.45, 0.55],   # b, right: bin (0.5, 0.6]
                      [0.5, 0.5],     # tie → a (argmax), wrong: 0.5 belongs to bin (0.4, 0.5]
                      [0.92, 0.08]])  # a, right
    true = ["a", "a", "b", "b", "a"]
    bins = charts.calibration_bins(true, proba, classes, n_bins=10)
    assert bins["count"].sum() == 5
    assert bins[["low", "high"]].round(2).values.tolist() == [[0.4, 0.5], [0.5, 0.6], [0.9, 1.0]]
    assert bins["count"].tolist() == [1, 1, 3]
    assert bins["confidence"].tolist() == pytest.approx([0.5, 0.55, (0.95 + 0.95 + 0.92) / 3])
    assert bins["accuracy"].tolist() == pytest.approx([0.0, 1.0, 2 / 3])
    fig = charts.calibration_plot(true, proba, classes, n_bins=10)
    assert list(fig.data[0].x) == [0, 1] and list(fig.data[0].y) == [0, 1]  # the diagonal
    assert list(fig.data[1].y) == pytest.approx([0.0, 1.0, 2 / 3])
    ece = (0.5 + 0.45 + 3 * abs(2 / 3 - 0.94)) / 5
    assert f"{ece:.3f}" in fig.layout.title.text
    with pytest.raises(LiftError, match="shape"):
        charts.calibration_bins(true, proba[:, :1], classes)


# -------------------------------------------------------------------- regression and training


def test_predicted_vs_actual_has_the_identity_line_over_all_values():
    fig = charts.predicted_vs_actual([1.0, 2.0, 3.0], [0.5, 2.5, 4.0])
    line, points = fig.data
    assert list(line.x) == list(line.y) == [0.5, 4.0]
    assert list(points.x) == [1.0, 2.0, 3.0] and list(points.y) == [0.5, 2.5, 4.0]
    with pytest.raises(LiftError, match="2 predictions for 3"):
        charts.predicted_vs_actual([1, 2, 3], [1, 2])


def test_training_curves_losses_validation_and_best_epoch():
    events = [
        {"kind": "log", "line": "starting"},
        {"kind": "train", "step": 1, "epoch": 0.5, "loss": 2.0},
        {"kind": "train", "step": 2, "epoch": 1.0, "loss": 1.5},
        {"kind": "eval", "step": 2, "epoch": 1, "best_epoch": 1, "val_accuracy": 0.6, "val_log_loss": 0.9},
        {"kind": "train", "step": 3, "epoch": 1.5, "loss": 1.2},
        {"kind": "train", "step": 4, "epoch": 2.0, "loss": 1.1},
        {"kind": "eval", "step": 4, "epoch": 2, "best_epoch": 2, "val_accuracy": 0.8, "val_log_loss": 0.7},
        {"kind": "eval", "step": 6, "epoch": 3, "best_epoch": 2, "val_accuracy": 0.7, "val_log_loss": 0.8},
    ]
    fig = charts.training_curves(events)
    loss, val, best = fig.data
    assert list(loss.x) == [1, 2, 3, 4] and list(loss.y) == [2.0, 1.5, 1.2, 1.1]
    assert list(val.x) == [1, 2, 3] and list(val.y) == [0.6, 0.8, 0.7]
    assert list(best.x) == [2] and list(best.y) == [0.8] and "best epoch (2" in best.name
    assert "Validation Accuracy" in fig.layout.annotations[1].text
    only_loss = charts.training_curves(events[:3])
    assert len(only_loss.data) == 1
    with pytest.raises(LiftError, match="no training progress"):
        charts.training_curves([{"kind": "log", "line": "x"}])


# ------------------------------------------------------------------------- decision regions


def test_decision_regions_background_is_the_prediction_over_the_grid():
    frame = pd.DataFrame({"u": [0.0, 1.0, 2.0, 3.0], "v": [10.0, 20.0, 30.0, 40.0], "y": ["lo", "lo", "hi", "hi"]})
    seen = []

    def predict(X):
        seen.append(X.copy())
        return np.where(X["u"] > 1.5, "hi", "lo")

    fig = charts.decision_regions(predict, frame, ["u", "v"], "y", grid=6, classes=["hi", "lo"])
    grid = seen[0]
    assert len(grid) == 36 and list(grid.columns) == ["u", "v"]
    assert grid["u"].min() < 0 and grid["u"].max() > 3  # the data's range with a margin
    z = np.asarray(fig.data[0].z)
    assert z.shape == (6, 6)
    xs = np.asarray(fig.data[0].x)
    assert (z[:, xs > 1.5] == 0).all() and (z[:, xs <= 1.5] == 1).all()  # codes follow `classes`
    points = {t.name: len(t.x) for t in fig.data[1:]}
    assert points == {"hi": 2, "lo": 2}


def test_region_grid_spans_the_finite_values_and_refuses_a_feature_with_none():
    frame = pd.DataFrame({"u": [np.inf, 0.0, 1.0, np.nan], "v": [1.0, 2.0, 3.0, 4.0]})
    assert charts.region_grid(frame, ["u", "v"], grid=3)["u"].unique().tolist() == [-0.05, 0.5, 1.05]
    with pytest.raises(LiftError, match="feature 'u' has no finite value"):
        charts.region_grid(frame.assign(u=[np.inf, -np.inf, np.nan, np.nan]), ["u", "v"])


def test_decision_regions_regression_surface_and_refusals():
    frame = pd.DataFrame({"u": [0.0, 1.0], "v": [0.0, 1.0], "y": [0.0, 2.0]})
    fig = charts.decision_regions(lambda X: X["u"] + X["v"], frame, ["u", "v"], "y", grid=5)
    z = np.asarray(fig.data[0].z)
    xs, ys = np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert z[2, 3] == pytest.approx(xs[3] + ys[2])
    with pytest.raises(LiftError, match="exactly two features"):
        charts.region_grid(frame, ["u"])
    with pytest.raises(LiftError, match="not a numeric column"):
        charts.region_grid(frame.assign(v=["a", "b"]), ["u", "v"])
    with pytest.raises(LiftError, match="3 predictions for 25"):
        charts.decision_regions(lambda X: [1, 2, 3], frame, ["u", "v"], "y", grid=5)


# --------------------------------------------------------------------------- comparing runs


def fake_run(run_id, seed=0, template="lift_names", epochs=6, data="iris", **doc_kw):
    request = {"data": data, "seed": seed, "target": None,
               "lift": {"model": "tiny", "predict_mode": "score", "prompt": {"template": template},
                        "train": {"epochs": epochs, "learning_rate": 2e-3, "batch_size": 4, "seed": 0},
                        "lora": {"r": 8}}}
    return {"id": run_id, "name": f"{data} · tiny", "status": "succeeded", "config": {"request": request},
            "metrics": doc(dataset=data, **doc_kw)}


def test_compare_table_shows_what_differs():
    a = fake_run("A", template="lift_names", lift=0.9)
    b = fake_run("B", template="text", lift=0.7, logreg=0.95)
    assert charts.differing_settings([a, b]) == ["template"]
    table = charts.compare_table([a, b])
    assert list(table.columns) == ["run", "metric", "method", "language model", "best baseline",
                                   "best baseline's score", "template"]
    assert table["language model"].tolist() == [0.9, 0.7] and table["method"].tolist() == ["LIFT", "LIFT"]
    assert table["template"].tolist() == ["lift_names", "text"]
    assert table["best baseline"].tolist() == ["Logistic regression"] * 2
    assert table["best baseline's score"].tolist() == [0.8, 0.95]


def test_an_automatic_rate_shows_the_rate_the_run_used():
    a, b = fake_run("A"), fake_run("B")
    for run, used in ((a, 6.32e-4), (b, None)):  # b: a run from before rates were recorded
        run["config"]["request"]["lift"]["train"]["learning_rate"] = "auto"
        run["metrics"]["models"]["lift"]["learning_rate"] = used
    assert charts.run_settings(a)["learning rate"] == "auto (6.3e-04)"
    assert charts.run_settings(b)["learning rate"] == "auto"
    assert charts.run_settings(fake_run("C"))["learning rate"] == 2e-3


def test_automatic_epochs_show_the_epochs_the_run_trained():
    a, b = fake_run("A"), fake_run("B")
    for run, used in ((a, 25), (b, None)):  # b: a run that failed before training
        run["config"]["request"]["lift"]["train"]["epochs"] = "auto"
        run["metrics"]["models"]["lift"]["epochs"] = used
    assert charts.run_settings(a)["epochs"] == "auto (25)"
    assert charts.run_settings(b)["epochs"] == "auto"


def test_automatic_and_chosen_settings_that_trained_alike_are_no_difference():
    auto, chosen, other = fake_run("A"), fake_run("B"), fake_run("C", epochs=12)
    auto["config"]["request"]["lift"]["train"].update(epochs="auto", learning_rate="auto")
    for run, epochs in ((auto, 6), (chosen, 6), (other, 12)):
        run["metrics"]["models"]["lift"].update(epochs=epochs, learning_rate=2e-3)
    assert charts.differing_settings([auto, chosen]) == []
    assert charts.differing_settings([auto, chosen, other]) == ["epochs"]
    assert charts.compare_table([auto, other])["epochs"].tolist() == ["auto (6)", 12]


def test_seed_siblings_are_the_same_settings_with_other_seeds():
    runs = [fake_run("s2", seed=2), fake_run("s0", seed=0), fake_run("other", seed=1, epochs=3),
            fake_run("s1", seed=1)]
    siblings = charts.seed_siblings(runs[1], runs)
    assert [r["id"] for r in siblings] == ["s0", "s1", "s2"]
    assert [r["id"] for r in charts.seed_siblings(runs[2], runs)] == ["other"]


def test_best_baseline_minds_the_metric_direction():
    assert charts.best_baseline(doc(task="regression", logreg=2.0, tree=3.0)) == ("ridge", 2.0)
    assert charts.best_baseline(doc(logreg=0.8, tree=0.85)) == ("tree", 0.85)
    assert charts.best_baseline({"task": "classification", "models": {"lift": {"accuracy": 1}}}) is None


# ------------------------------------------------------------------------- a real finished run


def test_load_results_of_the_finished_run(finished_run):
    workspace, run_id = finished_run
    store = RunStore(workspace)
    res = charts.load_results(store, run_id)
    assert res.doc["dataset"] == "iris" and "logreg" in res.doc["models"]
    preds = res.predictions
    assert preds.features == ["sepal length", "sepal width", "petal length", "petal width"]
    assert len(preds.true) == res.doc["n_test"] and preds.proba.shape == (res.doc["n_test"], 3)
    counts, _, _ = charts.confusion_counts(preds.true, preds.pred, res.doc["classes"])
    assert np.trace(counts) / counts.sum() == pytest.approx(res.doc["models"]["lift"]["accuracy"])
    assert {e["kind"] for e in res.events} == {"train", "eval"}
    assert len(charts.training_curves(res.events).data) == 3  # loss, validation, best epoch
    assert charts.lift_invalid_rate(res.doc) == 0.0
    assert charts.two_numeric_features(preds) is None  # iris has four features
    with pytest.raises(LiftError, match="no run 'nope'"):
        charts.load_results(store, "nope")


def test_predictors_for_regions_answer_new_rows(finished_run):
    workspace, run_id = finished_run
    store = RunStore(workspace)
    run = store.get(run_id)
    rows = charts.load_results(store, run_id).predictions.frame.iloc[:5]
    X = rows[["sepal length", "sepal width", "petal length", "petal width"]]
    logreg = charts.baseline_predictor(run, "logreg")
    assert set(logreg(X)) <= {"setosa", "versicolor", "virginica"}
    calls = []
    lift = charts.lift_predictor(store.run_dir(run_id) / "adapter.zip")
    assert len(lift(X, progress=lambda done, total: calls.append((done, total)))) == 5
    assert calls[-1] == (5, 5)
    with pytest.raises(LiftError, match="no baseline 'ridge'"):
        charts.baseline_predictor(run, "ridge")
    # refitted with the settings the run chose on its validation rows, it scores what the run did
    res = charts.load_results(store, run_id)
    test_X = res.predictions.frame[X.columns]
    for name in ("logreg", "svm"):
        assert "params" in res.doc["models"][name]
        hits = charts.baseline_predictor(run, name)(test_X) == np.asarray(res.predictions.true)
        assert hits.mean() == pytest.approx(res.doc["models"][name]["accuracy"]), name
    with pytest.raises(LiftError, match="no adapter file"):
        charts.lift_predictor(store.run_dir(run_id) / "missing.zip")


def test_method_bar_groups_runs_on_one_table_by_method_beside_the_best_baseline():
    runs = []
    for i, (method, score) in enumerate([("lift", 0.9), ("lift", 0.8), ("ltuning-prefix", 0.7), ("prompt", 0.5)]):
        run = fake_run(f"R{i}", lift=score, logreg=0.85 + 0.01 * i)
        run["metrics"]["method"] = method
        run["config"]["request"]["lift"]["method"] = method
        runs.append(run)
    other_table = fake_run("X", data="wine", lift=1.0)
    assert {r["id"] for r in charts.same_table_runs(runs[0], [*runs, other_table])} == {"R0", "R1", "R2", "R3"}
    bar = charts.method_bar(runs).data[0]
    assert list(bar.y) == ["best baseline: Logistic regression", "LIFT", "L-Tuning prefix", "Prompt tuning"]
    assert list(bar.x) == pytest.approx([0.865, 0.85, 0.7, 0.5])
    assert list(bar.customdata) == [4, 2, 1, 1]


def test_the_language_model_is_named_by_its_method():
    assert charts.model_label("lift") == "LIFT"
    assert charts.model_label("lift", "ltuning-prompt") == "L-Tuning prompt"
    assert charts.model_label("lift", None) == "Language model"
    table = charts.metrics_table({**doc(lift=0.8), "method": "prefix"})
    assert "Prefix tuning" in table["model"].tolist()
