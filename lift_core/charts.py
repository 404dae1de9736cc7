"""What the Results page shows: plotly figures and tables built from a run's stored results.

Every function here is pure (no Streamlit), so what a chart claims is unit-tested: the bar of a
model is its stored score, error bars are the population std over the given runs (as LIFT reports
them), a model that was skipped or failed is named in a note instead of drawn as a zero bar.
The page only lays these out. The loaders at the end read a finished run's files and rebuild the
predictors the decision-region chart needs.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from lift_core.baselines import BASELINE_LABELS, describe_settings
from lift_core.config import AUTO, METHOD_LABELS
from lift_core.errors import LiftError
from lift_core.metrics import main_metric, summarize
from lift_core.store import RunStore

LIFT = "lift"
LIFT_COLOR = "#E4572E"  # LIFT stands out; every baseline shares one quiet grey
BASELINE_COLOR = "#9AA5B1"
CLASS_COLORS = qualitative.Plotly

TASK_METRICS: dict[str, list[str]] = {
    "classification": ["accuracy", "macro_f1", "roc_auc", "log_loss"],
    "regression": ["rmse", "rae", "rae_filtered", "mae", "r2"],
}
METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy", "macro_f1": "Macro F1", "roc_auc": "ROC AUC", "log_loss": "Log loss",
    "rmse": "RMSE", "rae": "RAE", "rae_filtered": "RAE (LIFT's outlier filter)", "mae": "MAE",
    "r2": "R²", "invalid_rate": "Invalid answers", "fit_seconds": "Fit seconds",
}
HIGHER_IS_BETTER = frozenset({"accuracy", "macro_f1", "roc_auc", "r2"})
# Scalars of the metrics table besides the task's scores: the honesty number and the cost.
EXTRA_COLUMNS = ("invalid_rate", "fit_seconds")
NOTE_CHARS = 90  # long error messages are cut in chart notes; the table keeps them whole


# --------------------------------------------------------------------------------- labels


def model_label(name: str, method: str | None = "lift") -> str:
    """The name people read for a model key ("logreg" → "Logistic regression"). The key "lift" is
    the run's language model, named by its method ("LIFT (LoRA)", "L-Tuning prefix", ...; runs of
    mixed methods, ``method=None``: "Language model")."""
    if name == LIFT:
        return METHOD_LABELS.get(method, "Language model") if method else "Language model"
    return BASELINE_LABELS.get(name, name)


def run_method(docs: Sequence[dict]) -> str | None:
    """The one method of these runs' language model, or None when they mix methods."""
    methods = {d.get("method", "lift") for d in docs}
    return methods.pop() if len(methods) == 1 else None


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def metric_options(task: str) -> list[str]:
    """The metrics a bar chart can rank this task's models by, the main one first."""
    main_metric(task)  # refuses an unknown task with the usual message
    return list(TASK_METRICS[task])


def _direction(metric: str) -> str:
    return "higher is better" if metric in HIGHER_IS_BETTER else "lower is better"


def _number(value: Any) -> float | None:
    """A stored score as a float; None for anything that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _unavailable_reason(entry: dict, metric: str) -> str:
    if "skipped" in entry:
        return f"skipped: {entry['skipped']}"
    if "error" in entry:
        return f"failed: {entry['error']}"
    return f"no {metric_label(metric)}"


# ------------------------------------------------------------------------ model comparison


def _task_of(docs: Sequence[dict]) -> str:
    if not docs:
        raise LiftError("no finished run was given; pick at least one run to chart")
    tasks = {d.get("task") for d in docs}
    if len(tasks) > 1:
        raise LiftError("the chosen runs mix classification and regression; compare runs of one task")
    task = tasks.pop()
    main_metric(task)
    return task


def _model_order(docs: Sequence[dict]) -> list[str]:
    """LIFT first, then every other model in the order the runs stored them."""
    names = [LIFT]
    for doc in docs:
        names += [n for n in doc.get("models", {}) if n not in names]
    return names


def _scores(docs: Sequence[dict], metric: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per model, its finite scores over the runs; and why a model is missing (in some runs)."""
    values: dict[str, list[float]] = {}
    missing: dict[str, list[str]] = {}
    for doc in docs:
        for name, entry in doc.get("models", {}).items():
            score = _number(entry.get(metric))
            if score is None:
                missing.setdefault(name, []).append(_unavailable_reason(entry, metric))
            else:
                values.setdefault(name, []).append(score)
    notes = {}
    for name, reasons in missing.items():
        reason = reasons[0]
        if len(docs) > 1:
            reason = f"{reason} (in {len(reasons)} of {len(docs)} runs)"
        notes[name] = reason
    return values, notes


def unavailable_models(runs_metrics: Sequence[dict], metric: str | None = None) -> dict[str, str]:
    """Models with no score for ``metric`` in some run, by label, with the reason (skip or error).

    A model missing from every run is not drawn at all; one missing from some runs is averaged
    over the runs where it has a score, and the note says in how many it is missing.
    """
    metric = metric or main_metric(_task_of(runs_metrics))[0]
    method = run_method(runs_metrics)
    return {model_label(n, method): r for n, r in _scores(runs_metrics, metric)[1].items()}


def _add_note(fig: go.Figure, notes: dict[str, str]) -> None:
    if not notes:
        return
    lines = []
    for label, reason in notes.items():
        short = reason if len(reason) <= NOTE_CHARS else reason[: NOTE_CHARS - 1] + "…"
        lines.append(f"{label}: {short}")
    # Below the x axis and its title (yshift is in pixels, so this holds at any chart height).
    fig.add_annotation(text="Not shown — " + "<br>".join(lines), xref="paper", yref="paper", x=0,
                       y=0, yshift=-55, xanchor="left", yanchor="top", showarrow=False, align="left",
                       font={"size": 11})
    fig.update_layout(margin={"b": 75 + 16 * len(lines)})


def comparison_bar(runs_metrics: list[dict], metric: str | None = None) -> go.Figure:
    """LIFT against every baseline on one data set: one bar per model, LIFT highlighted.

    ``runs_metrics`` are metrics documents (``metrics.json``) of one run or of repeated runs of
    the same data set (e.g. seeds 0, 1, 2); with several, a bar is the mean and its error bar the
    population std over the runs (``metrics.summarize``). Bars are sorted best first.
    """
    task = _task_of(runs_metrics)
    metric = metric or main_metric(task)[0]
    datasets = {d.get("dataset") for d in runs_metrics}
    if len(datasets) > 1:
        raise LiftError("runs on different data sets cannot be averaged; compare them side by side instead")
    values, notes = _scores(runs_metrics, metric)
    method = run_method(runs_metrics)
    rows = []
    for name in _model_order(runs_metrics):
        if name in values:
            stats = summarize([{metric: v} for v in values[name]])[metric]
            rows.append((name, stats["mean"], stats["std"], int(stats["n"])))
    if not rows:
        raise LiftError(f"no model of these runs has a {metric_label(metric)} score; pick another metric")
    rows.sort(key=lambda r: r[1], reverse=metric in HIGHER_IS_BETTER)
    several = len(runs_metrics) > 1
    names, means, stds, counts = zip(*rows)
    text = [f"{m:.3g} ± {s:.2g}" if several else f"{m:.3g}" for m, s in zip(means, stds)]
    fig = go.Figure(go.Bar(
        x=list(means), y=[model_label(n, method) for n in names], orientation="h",
        error_x={"type": "data", "array": list(stds), "visible": several},
        marker_color=[LIFT_COLOR if n == LIFT else BASELINE_COLOR for n in names],
        text=text, textposition="inside", insidetextanchor="start", textangle=0, customdata=list(counts),
        hovertemplate="%{y}: %{x:.4g}<br>runs: %{customdata}<extra></extra>",
    ))
    spread = f", mean ± std over {len(runs_metrics)} runs" if several else ""
    fig.update_layout(
        title=f"{datasets.pop()}: {metric_label(metric)} ({_direction(metric)}){spread}",
        xaxis_title=metric_label(metric), yaxis={"autorange": "reversed"}, showlegend=False,
        height=120 + 32 * len(rows),
    )
    _add_note(fig, {model_label(n, method): r for n, r in notes.items()})
    return fig


def grouped_bar(labelled_runs: list[tuple[str, dict]], metric: str | None = None) -> go.Figure:
    """Several runs side by side (e.g. template A vs B): one bar group per model, one colour per run."""
    docs = [doc for _, doc in labelled_runs]
    task = _task_of(docs)
    metric = metric or main_metric(task)[0]
    order = _model_order(docs)
    method = run_method(docs)
    fig = go.Figure()
    notes = {}
    for k, (label, doc) in enumerate(labelled_runs):
        values, missing = _scores([doc], metric)
        shown = [n for n in order if n in values]
        fig.add_trace(go.Bar(
            name=label, orientation="h", x=[values[n][0] for n in shown],
            y=[model_label(n, method) for n in shown], marker_color=CLASS_COLORS[k % len(CLASS_COLORS)],
            hovertemplate=f"{label}<br>%{{y}}: %{{x:.4g}}<extra></extra>",
        ))
        notes.update({f"{model_label(n, method)} in {label}": r for n, r in missing.items()})
    fig.update_layout(
        barmode="group", title=f"{metric_label(metric)} ({_direction(metric)})",
        xaxis_title=metric_label(metric),
        yaxis={"autorange": "reversed", "categoryorder": "array",
               "categoryarray": [model_label(n, method) for n in order]},
        height=160 + 18 * len(order) * len(labelled_runs),
        legend={"title": {"text": "run"}, "orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    _add_note(fig, notes)
    return fig


def metrics_table(doc: dict) -> pd.DataFrame:
    """Every model of one run with all its scores, main metric first, best model first.

    A skipped or failed model stays in the table (at the bottom) with the reason in ``note``;
    ``settings`` shows what a baseline's validation search chose (empty: its defaults).
    """
    task = _task_of([doc])
    main, higher = main_metric(task)
    metrics = TASK_METRICS[task]
    rows, broken = [], []
    for name in _model_order([doc]):
        entry = doc.get("models", {}).get(name)
        if entry is None:
            continue
        row = {"model": model_label(name, doc.get("method", "lift"))}
        row.update({metric_label(m): _number(entry.get(m)) for m in [*metrics, *EXTRA_COLUMNS]})
        scored = _number(entry.get(main)) is not None
        row["settings"] = describe_settings(entry.get("params") or {})
        row["note"] = "" if scored else _unavailable_reason(entry, main)
        (rows if scored else broken).append(row)
    rows.sort(key=lambda r: r[metric_label(main)], reverse=higher)
    columns = ["model", *map(metric_label, [*metrics, *EXTRA_COLUMNS]), "settings", "note"]
    return pd.DataFrame(rows + broken, columns=columns)


# ------------------------------------------------------------------------ classification


def _labels(values: Sequence) -> list[str]:
    """Class labels compared as text: metrics.json and the predictions CSV may type them differently."""
    return [str(v) for v in values]


def confusion_counts(true: Sequence, pred: Sequence, classes: Sequence) -> tuple[np.ndarray, list[str], list[str]]:
    """Counts[i, j] = test rows of true class i predicted as column j.

    Columns are the classes plus "(invalid)" when some prediction is none of them, so the counts
    always add up to the number of rows.
    """
    true_s, pred_s, names = _labels(true), _labels(pred), _labels(classes)
    if len(true_s) != len(pred_s):
        raise LiftError(f"got {len(pred_s)} predictions for {len(true_s)} true values; give one per row")
    index = {c: i for i, c in enumerate(names)}
    stray = [t for t in true_s if t not in index]
    if stray:
        raise LiftError(f"the true label {stray[0]!r} is not among the classes {names}")
    columns = names + (["(invalid)"] if any(p not in index for p in pred_s) else [])
    counts = np.zeros((len(names), len(columns)), dtype=int)
    for t, p in zip(true_s, pred_s):
        counts[index[t], index.get(p, len(names))] += 1
    return counts, names, columns


def confusion_matrix(true: Sequence, pred: Sequence, classes: Sequence, model: str = "LIFT") -> go.Figure:
    """Heatmap of the confusion counts: rows true class, columns predicted class."""
    counts, rows, columns = confusion_counts(true, pred, classes)
    fig = go.Figure(go.Heatmap(
        z=counts, x=columns, y=rows, colorscale="Blues", texttemplate="%{z}", showscale=False,
        hovertemplate="true %{y}, predicted %{x}: %{z} rows<extra></extra>",
    ))
    accuracy = np.trace(counts[:, : len(rows)]) / max(counts.sum(), 1)
    fig.update_layout(
        title=f"Confusion matrix ({model})<br><sup>{counts.sum()} test rows, accuracy {accuracy:.3g}</sup>",
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )
    return fig


def calibration_bins(true: Sequence, proba: np.ndarray, classes: Sequence, n_bins: int = 10) -> pd.DataFrame:
    """The reliability diagram's points: per confidence bin, mean confidence vs observed accuracy.

    Confidence is the probability of the predicted (most probable) class. Bins split [0, 1] into
    ``n_bins`` equal intervals closed on the right ((0.4, 0.5] holds 0.5); empty bins are left out.
    Columns: low, high, confidence, accuracy, count.
    """
    proba = np.asarray(proba, dtype=float)
    names = _labels(classes)
    if proba.ndim != 2 or proba.shape != (len(true), len(names)):
        raise LiftError(f"the probabilities have shape {proba.shape}, expected ({len(true)}, {len(names)}): "
                        "one row per test row and one column per class")
    if n_bins < 1:
        raise LiftError("a calibration plot needs at least one bin")
    confidence = proba.max(axis=1)
    correct = np.array([names[k] == t for k, t in zip(proba.argmax(axis=1), _labels(true))])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = [
        {"low": edges[b], "high": edges[b + 1], "confidence": float(confidence[which == b].mean()),
         "accuracy": float(correct[which == b].mean()), "count": int((which == b).sum())}
        for b in range(n_bins) if (which == b).any()
    ]
    return pd.DataFrame(rows, columns=["low", "high", "confidence", "accuracy", "count"])


def calibration_plot(true: Sequence, proba: np.ndarray, classes: Sequence, n_bins: int = 10,
                     model: str = "LIFT") -> go.Figure:
    """Reliability diagram: points on the diagonal mean "90 % sure" is right 90 % of the time.

    The title gives the expected calibration error (count-weighted |accuracy − confidence|).
    """
    bins = calibration_bins(true, proba, classes, n_bins)
    ece = float((bins["count"] * (bins["accuracy"] - bins["confidence"]).abs()).sum() / bins["count"].sum())
    fig = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                   line={"dash": "dash", "color": "grey"}),
        go.Scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", name=model,
                   marker={"size": 6 + 14 * np.sqrt(bins["count"] / bins["count"].max()), "color": LIFT_COLOR},
                   customdata=bins["count"],
                   hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} over %{customdata} rows<extra></extra>"),
    ])
    fig.update_layout(title=f"Calibration ({model})<br><sup>expected calibration error {ece:.3f}</sup>",
                      xaxis={"title": "predicted probability of the predicted class", "range": [0, 1.02]},
                      yaxis={"title": "observed accuracy", "range": [0, 1.02]},
                      legend={"x": 0.02, "y": 0.98, "bgcolor": "rgba(255,255,255,0.6)"})
    return fig


# ------------------------------------------------------------------------------ regression


def predicted_vs_actual(true: Sequence, pred: Sequence) -> go.Figure:
    """LIFT's predictions against the truth; points on the y = x line are exact."""
    true_a, pred_a = np.asarray(true, dtype=float), np.asarray(pred, dtype=float)
    if len(true_a) != len(pred_a) or not len(true_a):
        raise LiftError(f"got {len(pred_a)} predictions for {len(true_a)} true values; give one per row")
    lo = float(min(true_a.min(), pred_a.min()))
    hi = float(max(true_a.max(), pred_a.max()))
    fig = go.Figure([
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line={"dash": "dash", "color": "grey"}),
        go.Scatter(x=true_a, y=pred_a, mode="markers", name="test rows", marker={"color": LIFT_COLOR},
                   hovertemplate="true %{x:.4g}, predicted %{y:.4g}<extra></extra>"),
    ])
    fig.update_layout(title="Predicted vs actual (LIFT, test rows)", xaxis_title="actual",
                      yaxis={"title": "predicted", "scaleanchor": "x"})
    return fig


# ------------------------------------------------------------------------------- training

_VAL_PREFERENCE = ("val_accuracy", "val_rmse")


def _validation_key(evals: list[dict]) -> str | None:
    keys = [k for e in evals for k in e if k.startswith("val_") and _number(e.get(k)) is not None]
    for key in _VAL_PREFERENCE:
        if key in keys:
            return key
    return keys[0] if keys else None


def training_curves(events: list[dict]) -> go.Figure:
    """Train loss per optimizer step and the validation metric per epoch, best epoch marked.

    ``events`` are the run store's events (``RunStore.events``): kind "train" carries ``step``
    and ``loss``; kind "eval" carries ``epoch``, ``best_epoch`` and ``val_*`` metrics. Other kinds
    (log lines) are ignored. The best epoch is the one training kept (restored at the end).
    """
    train = [e for e in events if e.get("kind") == "train" and _number(e.get("loss")) is not None]
    evals = [e for e in events if e.get("kind") == "eval" and e.get("epoch") is not None]
    if not train and not evals:
        raise LiftError("this run recorded no training progress, so there are no curves to draw")
    key = _validation_key(evals)
    titles = ["Training loss per step"] + ([f"Validation {metric_label(key.removeprefix('val_'))} per epoch"]
                                            if key else [])
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    fig.add_trace(go.Scatter(x=[e["step"] for e in train], y=[e["loss"] for e in train], mode="lines",
                             name="train loss", line={"color": BASELINE_COLOR}), row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=1)
    if key:
        points = [(int(e["epoch"]), float(e[key])) for e in evals if _number(e.get(key)) is not None]
        epochs, scores = zip(*points)
        fig.add_trace(go.Scatter(x=list(epochs), y=list(scores), mode="lines+markers",
                                 name=f"validation {metric_label(key.removeprefix('val_'))}",
                                 line={"color": LIFT_COLOR}), row=1, col=2)
        best = evals[-1].get("best_epoch")
        if best in epochs:
            fig.add_trace(go.Scatter(x=[best], y=[scores[epochs.index(best)]], mode="markers",
                                     name=f"best epoch ({best}, kept)",
                                     marker={"symbol": "star", "size": 16, "color": "gold",
                                             "line": {"color": "black", "width": 1}}), row=1, col=2)
        fig.update_xaxes(title_text="epoch", dtick=1 if max(epochs) <= 20 else None, row=1, col=2)
        if key == "val_accuracy":  # a flat curve otherwise gets an axis reaching below 0
            fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_layout(legend={"orientation": "h", "y": -0.2})
    return fig


# ------------------------------------------------------------------------ decision regions

Predict = Callable[[pd.DataFrame], Sequence]


def _axis(values: pd.Series, grid: int) -> np.ndarray:
    """Grid values over the data's range (5 % margin), rounded to 3 significant digits of the
    range so a language model sees numbers written like those it was trained on."""
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if finite.empty:
        raise LiftError(f"feature {values.name!r} has no finite value in these rows, so it spans no range to draw")
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo or abs(hi) or 1.0
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    decimals = max(0, 3 - math.floor(math.log10(span)))
    return np.unique(np.round(np.linspace(lo, hi, grid), decimals))


def region_grid(frame: pd.DataFrame, features: Sequence[str], grid: int = 25) -> pd.DataFrame:
    """The grid × grid points (x varies fastest) covering two numeric features' range."""
    if len(features) != 2:
        raise LiftError(f"decision regions need exactly two features, not {len(features)}")
    if not 2 <= grid <= 200:
        raise LiftError("the grid size must be between 2 and 200 points per axis")
    for f in features:
        if f not in frame.columns or not pd.api.types.is_numeric_dtype(frame[f]):
            raise LiftError(f"feature {f!r} is not a numeric column of the table; decision regions need two numbers")
    xs, ys = _axis(frame[features[0]], grid), _axis(frame[features[1]], grid)
    gx, gy = np.meshgrid(xs, ys)
    return pd.DataFrame({features[0]: gx.ravel(), features[1]: gy.ravel()})


def _discrete_scale(k: int) -> list[list]:
    scale = []
    for i in range(k):
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        scale += [[i / k, color], [(i + 1) / k, color]]
    return scale


def decision_regions(estimator_predict: Predict, frame: pd.DataFrame, features: Sequence[str], target: str,
                     grid: int = 25, classes: Sequence | None = None, title: str = "Decision regions") -> go.Figure:
    """Background: the model's prediction over a grid; points: the rows of ``frame`` (test rows).

    With ``classes`` (classification) the background is the predicted class, one colour per class
    (a prediction that is none of them is left blank); without, the predicted number as a
    continuous surface. ``estimator_predict`` gets the grid as a DataFrame of the two features.
    """
    points = region_grid(frame, features, grid)
    pred = np.asarray(estimator_predict(points))
    if len(pred) != len(points):
        raise LiftError(f"the model gave {len(pred)} predictions for {len(points)} grid points")
    xs, ys = np.unique(points[features[0]]), np.unique(points[features[1]])
    fig = go.Figure()
    if classes is not None:
        names = _labels(classes)
        index = {c: i for i, c in enumerate(names)}
        codes = np.array([index.get(p, np.nan) for p in _labels(pred)], dtype=float)
        fig.add_trace(go.Heatmap(
            x=xs, y=ys, z=codes.reshape(len(ys), len(xs)), text=np.array(_labels(pred)).reshape(len(ys), len(xs)),
            zmin=-0.5, zmax=len(names) - 0.5, colorscale=_discrete_scale(len(names)), showscale=False,
            opacity=0.35, name="predicted", hovertemplate="predicted %{text}<extra></extra>"))
        truth = np.array(_labels(frame[target]))
        for i, name in enumerate(names):
            rows = frame[truth == name]
            fig.add_trace(go.Scatter(
                x=rows[features[0]], y=rows[features[1]], mode="markers", name=name,
                marker={"color": CLASS_COLORS[i % len(CLASS_COLORS)], "line": {"color": "black", "width": 1}}))
    else:
        values = pred.astype(float)
        truth = frame[target].astype(float)
        lo, hi = float(min(values.min(), truth.min())), float(max(values.max(), truth.max()))
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=values.reshape(len(ys), len(xs)), zmin=lo, zmax=hi,
                                 colorscale="Viridis", opacity=0.6, name="predicted",
                                 colorbar={"title": {"text": target}}))
        fig.add_trace(go.Scatter(
            x=frame[features[0]], y=frame[features[1]], mode="markers", name="test rows",
            marker={"color": truth, "colorscale": "Viridis", "cmin": lo, "cmax": hi,
                    "line": {"color": "black", "width": 1}}))
    fig.update_layout(title=title, xaxis_title=features[0], yaxis_title=features[1])
    return fig


# ------------------------------------------------------------------------- a run's results


@dataclass
class TestPredictions:
    """LIFT's test predictions as the run wrote them (``test_predictions.csv``)."""

    frame: pd.DataFrame
    features: list[str]
    true: pd.Series
    pred: pd.Series
    proba: np.ndarray | None


@dataclass
class RunResults:
    run: dict
    doc: dict
    predictions: TestPredictions | None
    events: list[dict]


def read_test_predictions(path: Path, doc: dict) -> TestPredictions:
    """Split the predictions CSV into features, truth, LIFT's answer and per-class probabilities."""
    frame = pd.read_csv(path)
    target = doc["target"]
    true_col, pred_col = f"{target} (true)", f"{target} (LIFT)"
    if true_col not in frame.columns or pred_col not in frame.columns:
        raise LiftError(f"{path} lacks the columns {true_col!r} and {pred_col!r}; it was not written by a LIFT run")
    features = list(frame.columns[: list(frame.columns).index(true_col)])
    proba_cols = [f"P({c})" for c in doc.get("classes") or []]
    proba = frame[proba_cols].to_numpy(dtype=float) if proba_cols and all(c in frame for c in proba_cols) else None
    return TestPredictions(frame, features, frame[true_col], frame[pred_col], proba)


def load_results(store: RunStore, run_id: str) -> RunResults:
    """Everything the Results page shows for a finished run, read once."""
    run = store.get(run_id)
    if run is None:
        raise LiftError(f"there is no run {run_id!r} in this workspace; pick one of the finished runs")
    run_dir = store.run_dir(run_id)
    doc = run.get("metrics")
    if not doc and (run_dir / "metrics.json").is_file():
        doc = json.loads((run_dir / "metrics.json").read_text())
    if not doc or "models" not in doc:
        raise LiftError(f"run {run_id} has no metrics (status {run['status']}); only a finished run has results")
    path = run_dir / "test_predictions.csv"
    predictions = read_test_predictions(path, doc) if path.is_file() else None
    events = [e for e in store.events(run_id) if e["kind"] in ("train", "eval")]
    return RunResults(run, doc, predictions, events)


def lift_score(doc: dict, metric: str | None = None) -> float | None:
    """LIFT's score on the task's main metric (or ``metric``); None when it has none."""
    metric = metric or main_metric(doc["task"])[0]
    return _number(doc.get("models", {}).get(LIFT, {}).get(metric))


def best_baseline(doc: dict, metric: str | None = None) -> tuple[str, float] | None:
    """The baseline LIFT has to beat: the best-scoring one on the main metric (or ``metric``)."""
    metric = metric or main_metric(doc["task"])[0]
    scored = [(n, _number(e.get(metric))) for n, e in doc.get("models", {}).items() if n != LIFT]
    scored = [(n, v) for n, v in scored if v is not None]
    if not scored:
        return None
    return (max if metric in HIGHER_IS_BETTER else min)(scored, key=lambda s: s[1])


def lift_invalid_rate(doc: dict) -> float | None:
    """Share of test rows whose LIFT answer could not be read (counted wrong in every score)."""
    return _number(doc.get("models", {}).get(LIFT, {}).get("invalid_rate"))


def two_numeric_features(predictions: TestPredictions | None) -> list[str] | None:
    """The two features when the data has exactly two, both numeric (regions can be drawn)."""
    if predictions is None or len(predictions.features) != 2:
        return None
    ok = all(pd.api.types.is_numeric_dtype(predictions.frame[f]) for f in predictions.features)
    return list(predictions.features) if ok else None


def region_baselines(doc: dict) -> list[str]:
    """Baselines of the run that scored (so refitting one for its regions is known to work)."""
    task = doc["task"]
    main = main_metric(task)[0]
    return [n for n, e in doc.get("models", {}).items() if n != LIFT and _number(e.get(main)) is not None]


def lift_predictor(adapter_zip: Path, trust_remote_code: bool = False) -> Callable[..., np.ndarray]:
    """The run's LIFT model rebuilt from its adapter zip; call it as ``predict(X, progress=...)``.
    ``trust_remote_code``: the run's own setting (``runs_table.allowed_remote_code``)."""
    from lift_core.bundle import read_bundle
    from lift_core.estimator import load_estimator

    if not Path(adapter_zip).is_file():
        raise LiftError(f"the run has no adapter file {adapter_zip}; it cannot predict new points")
    with tempfile.TemporaryDirectory(prefix="lift-regions-") as tmp:
        read_bundle(adapter_zip, Path(tmp))
        est = load_estimator(Path(tmp) / "adapter", trust_remote_code)  # weights are in memory once loaded
    return est.predict


def _stored_model(run: dict, name: str) -> dict:
    """What a run's metrics hold for one model ({} while it has none: running, failed, older runs)."""
    return ((run.get("metrics") or {}).get("models") or {}).get(name) or {}


def baseline_predictor(run: dict, name: str) -> Predict:
    """A baseline refitted on the run's own training rows (seconds), with the settings the run
    chose for it, for its decision regions."""
    from lift_core.baselines import make_baselines, split_columns
    from lift_core.draft import request_of_run
    from lift_core.experiment import load_table

    request = request_of_run(run)
    table = load_table(request)
    p, train = table.prepared, table.split.train
    numeric, categorical = split_columns(p.frame, p.features)
    models = make_baselines(p.task, numeric, categorical, seed=request.seed, n_train=len(train))
    if name not in models:
        raise LiftError(f"no baseline {name!r} for {p.task}; choose one of {', '.join(models)}")
    y = p.frame[p.target].iloc[train].to_numpy()
    params = _stored_model(run, name).get("params") or {}
    model = models[name].set_params(**params)
    model.fit(p.frame[p.features].iloc[train], y.astype(float) if p.task == "regression" else y)
    return model.predict


# ----------------------------------------------------------------------------- comparing runs


def run_label(run: dict) -> str:
    return f"{run['id']} · {run.get('name') or run.get('dataset') or ''}".rstrip(" ·")


def run_settings(run: dict) -> dict[str, Any]:
    """The settings people vary between runs, flattened for a comparison table."""
    request = (run.get("config") or {}).get("request") or {}
    lift = request.get("lift") or {}
    prompt, train, lora = lift.get("prompt") or {}, lift.get("train") or {}, lift.get("lora") or {}
    template = prompt.get("template")
    if template and len(template) > 40:
        template = template[:39] + "…"
    rate = train.get("learning_rate")
    used = _stored_model(run, LIFT).get("learning_rate")
    if rate == AUTO and used is not None:
        rate = f"auto ({used:.1e})"
    epochs = train.get("epochs")
    if epochs == AUTO and _stored_model(run, LIFT).get("epochs") is not None:
        epochs = f"auto ({_stored_model(run, LIFT)['epochs']})"
    return {
        "data set": request.get("data"), "target": request.get("target"), "template": template,
        "model": lift.get("model"), "epochs": epochs, "learning rate": rate,
        "method": lift.get("method", "lift"),
        "batch size": train.get("batch_size"), "LoRA r": lora.get("r"), "predict mode": lift.get("predict_mode"),
        "seed": request.get("seed"), "training seed": train.get("seed"),
    }


def _trained_with(run: dict) -> dict[str, Any]:
    """A run's settings with the epochs and rate it trained with where it recorded them, so an
    automatic "auto (8)" and a chosen 8 are not a difference between two runs that both trained 8."""
    used = _stored_model(run, LIFT)
    settings = run_settings(run)
    for key, stored in (("epochs", "epochs"), ("learning rate", "learning_rate")):
        if used.get(stored) is not None:
            settings[key] = used[stored]
    return settings


def differing_settings(runs: Sequence[dict]) -> list[str]:
    """The settings whose value is not the same in every run (what a comparison is about)."""
    settings = [_trained_with(r) for r in runs]
    if len(settings) < 2:
        return []
    return [k for k in settings[0] if len({json.dumps(s.get(k), default=str) for s in settings}) > 1]


def compare_table(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per finished run: LIFT's main metric, the best baseline's, and the settings that differ."""
    keys = differing_settings(runs)
    rows = []
    for run in runs:
        doc = run.get("metrics") or {}
        best = best_baseline(doc)
        settings = run_settings(run)
        rows.append({"run": run_label(run), "metric": metric_label(main_metric(doc["task"])[0]),
                     "method": model_label(LIFT, doc.get("method", "lift")),
                     "language model": lift_score(doc), "best baseline": model_label(best[0]) if best else "",
                     "best baseline's score": best[1] if best else None, **{k: settings[k] for k in keys}})
    return pd.DataFrame(rows)


def seed_siblings(run: dict, runs: Sequence[dict]) -> list[dict]:
    """Finished runs with exactly this run's settings but another seed (itself included), by seed.

    These are LIFT's "same experiment, three splits": their mean ± std is the honest summary.
    """
    def key(r: dict) -> str:
        request = json.loads(json.dumps((r.get("config") or {}).get("request") or {}, default=str))
        request.pop("seed", None)
        (request.get("lift") or {}).get("train", {}).pop("seed", None)
        return json.dumps(request, sort_keys=True)

    def seeds(r: dict) -> tuple:
        request = (r.get("config") or {}).get("request") or {}
        return request.get("seed"), ((request.get("lift") or {}).get("train") or {}).get("seed")

    mine = key(run)
    same = [r for r in runs if r.get("status") == "succeeded" and r.get("metrics") and key(r) == mine]
    if run["id"] not in {r["id"] for r in same}:
        same.append(run)
    # A re-run of the same seeds is the same experiment again, not another split: keep this run, else the newest.
    newest: dict[tuple, dict] = {}
    for r in sorted(same, key=lambda r: (r["id"] == run["id"], r.get("created") or 0)):
        newest[seeds(r)] = r
    same = list(newest.values())
    return sorted(same, key=lambda r: (run_settings(r)["seed"] is None, run_settings(r)["seed"] or 0, r["id"]))


def same_table_runs(run: dict, runs: Sequence[dict]) -> list[dict]:
    """Finished runs on this run's table and target, whatever their method or settings."""
    def table(r: dict) -> tuple:
        request = (r.get("config") or {}).get("request") or {}
        return request.get("data"), (r.get("metrics") or {}).get("target")

    mine = table(run)
    return [r for r in runs if r.get("status") == "succeeded" and r.get("metrics") and table(r) == mine]


def method_bar(runs: Sequence[dict], metric: str | None = None) -> go.Figure:
    """Which method wins on one table: each method's language model (mean ± std over its runs,
    e.g. seeds) beside the best baseline of those runs, best first."""
    docs = [r["metrics"] for r in runs]
    task = _task_of(docs)
    metric = metric or main_metric(task)[0]
    by_method: dict[str, list[float]] = {}
    baselines: dict[str, list[float]] = {}
    for doc in docs:
        for name, entry in doc.get("models", {}).items():
            score = _number(entry.get(metric))
            if score is None:
                continue
            if name == LIFT:
                by_method.setdefault(doc.get("method", "lift"), []).append(score)
            else:
                baselines.setdefault(name, []).append(score)
    if not by_method:
        raise LiftError(f"no run here has a language-model {metric_label(metric)} score; pick another metric")
    higher = metric in HIGHER_IS_BETTER
    rows = [(METHOD_LABELS.get(m, m), summarize([{metric: v} for v in vals])[metric], LIFT_COLOR)
            for m, vals in by_method.items()]
    if baselines:
        stats = {n: summarize([{metric: v} for v in vals])[metric] for n, vals in baselines.items()}
        best = (max if higher else min)(stats, key=lambda n: stats[n]["mean"])
        rows.append((f"best baseline: {model_label(best)}", stats[best], BASELINE_COLOR))
    rows.sort(key=lambda r: r[1]["mean"], reverse=higher)
    fig = go.Figure(go.Bar(
        x=[r[1]["mean"] for r in rows], y=[r[0] for r in rows], orientation="h",
        error_x={"type": "data", "array": [r[1]["std"] for r in rows], "visible": True},
        marker_color=[r[2] for r in rows], customdata=[int(r[1]["n"]) for r in rows],
        text=[f"{r[1]['mean']:.3g} ± {r[1]['std']:.2g} (n={int(r[1]['n'])})" for r in rows],
        textposition="inside", insidetextanchor="start",
        hovertemplate="%{y}: %{x:.4g}<br>runs: %{customdata}<extra></extra>",
    ))
    fig.update_layout(title=f"{docs[0].get('dataset')}: methods by {metric_label(metric)} ({_direction(metric)}), "
                            "mean ± std over runs", xaxis_title=metric_label(metric),
                      yaxis={"autorange": "reversed"}, showlegend=False, height=140 + 36 * len(rows))
    return fig
