"""The numbers every model is judged by, computed the same way for baselines and for LIFT.

Honesty rules from the LIFT paper's known bugs: an answer the model could not give (unparsable
text) counts as wrong and is reported as ``invalid_rate``; it is never dropped from the score.
"""

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from lift_core.errors import LiftError

# Probabilities are clipped to at least this before log_loss, so a confident 0 costs
# -log(1e-15) ≈ 34.5 instead of infinity.
PROBA_FLOOR = 1e-15

_MAIN_METRIC = {"classification": ("accuracy", True), "regression": ("rmse", False)}


def _check_lengths(y_true: np.ndarray, y_pred: np.ndarray, n_invalid: int) -> int:
    """Refuse inputs that would make a metric silently meaningless."""
    n = len(y_true)
    if n == 0:
        raise LiftError("There are no test rows to score; make the test split non-empty.")
    if len(y_pred) != n:
        raise LiftError(
            f"Got {len(y_pred)} predictions for {n} test rows; predict exactly one value per row."
        )
    if not 0 <= n_invalid <= n:
        raise LiftError(f"n_invalid={n_invalid} must be between 0 and the {n} test rows.")
    return n


def classification_metrics(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence | np.ndarray | None = None,
    n_invalid: int = 0,
) -> dict[str, float]:
    """Accuracy and macro F1 (plus ROC AUC and log loss from ``proba``) over ALL test rows.

    ``classes`` fixes the order of ``proba``'s columns; it defaults to the sorted labels of
    ``y_true``. A prediction that is not one of ``classes`` (an invalid answer, None, NaN) counts
    as wrong and is not a label of its own in macro F1, which averages over the classes present in
    ``y_true`` or predicted. ``roc_auc`` (binary: column of classes[1]; multiclass: one-vs-rest
    macro over the classes present in ``y_true``) is left out when ``y_true`` has a single class.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    n = _check_lengths(y_true, y_pred, n_invalid)
    classes = list(np.unique(y_true) if classes is None else classes)
    index = {label: k for k, label in enumerate(classes)}
    unknown = [label for label in y_true if label not in index]
    if unknown:
        raise LiftError(
            f"The true labels include {unknown[0]!r}, which is not among the classes {classes}; "
            "pass every class the target can take."
        )
    true_codes = np.array([index[label] for label in y_true])
    pred_codes = np.array([index.get(label, -1) if _hashable(label) else -1 for label in y_pred])
    present = np.union1d(true_codes, pred_codes[pred_codes >= 0])
    out = {
        "accuracy": float(np.mean(true_codes == pred_codes)),
        "macro_f1": float(
            f1_score(true_codes, pred_codes, labels=present, average="macro", zero_division=0)
        ),
    }
    if proba is not None:
        out.update(_probability_metrics(true_codes, np.asarray(proba, dtype=float), len(classes)))
    out["invalid_rate"] = n_invalid / n
    out["n"] = float(n)
    return out


def _hashable(value: object) -> bool:
    """True for values usable as a dict key (an unparsable answer may be anything)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _probability_metrics(true_codes: np.ndarray, proba: np.ndarray, k: int) -> dict[str, float]:
    """ROC AUC and log loss from an n × k probability matrix whose columns follow the classes."""
    if proba.shape != (len(true_codes), k):
        raise LiftError(
            f"The probability matrix has shape {proba.shape}, expected ({len(true_codes)}, {k}): "
            "one row per test row and one column per class, in the order of `classes`."
        )
    out: dict[str, float] = {}
    present = np.unique(true_codes)
    if len(present) > 1:
        if k == 2:
            out["roc_auc"] = float(roc_auc_score(true_codes == 1, proba[:, 1]))
        else:
            per_class = [roc_auc_score(true_codes == c, proba[:, c]) for c in present]
            out["roc_auc"] = float(np.mean(per_class))
    if k >= 2:
        clipped = np.clip(proba, PROBA_FLOOR, 1.0)
        clipped /= clipped.sum(axis=1, keepdims=True)
        out["log_loss"] = float(log_loss(true_codes, clipped, labels=np.arange(k)))
    return out


def regression_metrics(
    y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray, n_invalid: int = 0
) -> dict[str, float]:
    """RMSE, MAE, R², and LIFT's RAE both raw and after its outlier filter.

    ``rae`` = sum|y-ŷ| / sum|y-mean(y)|. ``rae_filtered`` is the same formula on the rows left
    after dropping those with |y-ŷ| > 3·RMSE (RMSE over all rows), which is how the LIFT paper
    tames a few absurd language-model answers; ``n_filtered`` counts the rows dropped. When y_true
    is constant (on the rows used) the RAE and R² denominators are 0, so those come back NaN rather
    than a misleading 0 or infinity. Invalid answers must already be replaced by a fallback number
    in ``y_pred`` and counted in ``n_invalid``.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = _check_lengths(y_true, y_pred, n_invalid)
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise LiftError(
            "Regression targets and predictions must be finite numbers; replace an invalid answer "
            "with a fallback value (e.g. the training mean) and count it in n_invalid."
        )
    abs_err = np.abs(y_true - y_pred)
    rmse = float(np.sqrt(np.mean(abs_err**2)))
    keep = abs_err <= 3 * rmse
    spread = np.sum((y_true - y_true.mean()) ** 2)
    return {
        "rmse": rmse,
        "mae": float(np.mean(abs_err)),
        "r2": float(1 - np.sum(abs_err**2) / spread) if spread > 0 else float("nan"),
        "rae": _rae(y_true, abs_err),
        "rae_filtered": _rae(y_true[keep], abs_err[keep]),
        "n_filtered": float(n - keep.sum()),
        "invalid_rate": n_invalid / n,
        "n": float(n),
    }


def _rae(y_true: np.ndarray, abs_err: np.ndarray) -> float:
    """Relative absolute error; NaN when y_true is constant (nothing to be relative to)."""
    denominator = np.sum(np.abs(y_true - y_true.mean()))
    return float(np.sum(abs_err) / denominator) if denominator > 0 else float("nan")


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean ± std over repeated runs (LIFT reports 3 splits), per metric present in every run.

    ``std`` is numpy's default population std (ddof=0), as LIFT's code reports it, so our numbers
    compare with the paper's. NaN runs are skipped (nanmean/nanstd) and ``n`` counts the runs used.
    """
    if not runs:
        return {}
    keys = [key for key in runs[0] if all(key in run for run in runs[1:])]
    out = {}
    for key in keys:
        values = np.array([run[key] for run in runs], dtype=float)
        with warnings.catch_warnings():  # all-NaN → NaN is the intended answer
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(values), np.nanstd(values)
        out[key] = {"mean": float(mean), "std": float(std), "n": float(np.sum(~np.isnan(values)))}
    return out


def main_metric(task: str) -> tuple[str, bool]:
    """The metric that ranks models for a task, and whether higher is better."""
    if task not in _MAIN_METRIC:
        raise LiftError(f"Unknown task {task!r}; use 'classification' or 'regression'.")
    return _MAIN_METRIC[task]
