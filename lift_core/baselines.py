"""Classic ML baselines (LIFT's comparison columns) and the one loop every model is scored by.

Baselines get what the paper gives them: standard scaling for numbers, one-hot for categories.
They also get what LIFT gets: their settings are chosen on the validation rows (LIFT picks its
learning rate and epoch there), then they are fitted on the training rows alone. Left at
scikit-learn's defaults they lose for no good reason (an RBF SVM with C=1 scored 64 % on two
circles, where the paper's tuned one scores 80 %), and the comparison would flatter LIFT.
The LIFT model goes through the same ``evaluate`` so the comparison is like for like.
"""

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from lift_core.errors import LiftError
from lift_core.metrics import classification_metrics, regression_metrics

BASELINE_LABELS: dict[str, str] = {
    "majority": "Majority class",
    "mean": "Mean of the target",
    "logreg": "Logistic regression",
    "ridge": "Ridge regression",
    "poly3": "Cubic polynomial (ridge)",
    "tree": "Decision tree",
    "knn": "k-nearest neighbours",
    "mlp": "Multilayer perceptron",
    "svm": "RBF-kernel SVM",
    "rf": "Random forest",
    "gbt": "Gradient-boosted trees",
    "gp": "Gaussian process",
}

# Exact GP is O(n³) in time and O(n²) in memory; past this many training rows it would stall.
GP_MAX_TRAIN = 3000
# Each optimizer restart costs one more fit: about 1 s at 1,000 rows, 25 s at 3,000 (2-core CPU).
GP_RESTART_MAX_TRAIN = 1000
# Choosing settings fits each baseline once per grid point (up to 25 for the SVM); past this many
# training rows that costs more than it is worth, and the defaults are used.
TUNE_MAX_TRAIN = 20_000
# A cubic expansion of k columns has C(k+3, 3) features (20 → 1,771; 50 → 23,426).
POLY3_MAX_FEATURES = 20

TASKS = ("classification", "regression")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise LiftError(f"Unknown task {task!r}; use 'classification' or 'regression'.")


def split_columns(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """Numeric vs categorical features: booleans and anything non-numeric are categories."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise LiftError(f"Feature columns {missing} are not in the table; pick existing columns.")
    numeric, categorical = [], []
    for name in features:
        dtype = frame[name].dtype
        is_number = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        (numeric if is_number else categorical).append(name)
    return numeric, categorical


def _as_text(values: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Categories as strings (so 1, "1" and True mix safely) while keeping missing as NaN."""
    frame = pd.DataFrame(values)
    text = frame.astype(str).to_numpy(dtype=object, copy=True)  # pandas may hand a read-only view
    text[frame.isna().to_numpy()] = np.nan  # pandas < 3 turns NaN into the string 'nan'
    return text


def _preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """Median-impute + scale numbers; stringify, mode-impute and one-hot categories."""
    if not numeric and not categorical:
        raise LiftError("No feature columns were given; choose at least one feature.")
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categories = make_pipeline(
        FunctionTransformer(_as_text),
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer([("num", numbers, numeric), ("cat", categories, categorical)])


def _scaled_target(model: object) -> TransformedTargetRegressor:
    """Standardise y for models whose defaults (SVR epsilon, MLP init, GP prior) assume unit y."""
    return TransformedTargetRegressor(regressor=model, transformer=StandardScaler())


def skipped_baselines(task: str, n_train: int, n_features: int) -> dict[str, str]:
    """Baselines left out for this data size, with the reason shown to the user."""
    _check_task(task)
    skipped = {}
    if task == "regression" and n_train > GP_MAX_TRAIN:
        skipped["gp"] = (
            f"an exact Gaussian process is O(n³); {n_train} training rows is more than "
            f"{GP_MAX_TRAIN}."
        )
    if task == "regression" and n_features > POLY3_MAX_FEATURES:
        skipped["poly3"] = (
            f"a cubic expansion of {n_features} features is too wide (more than "
            f"{POLY3_MAX_FEATURES} features)."
        )
    return skipped


def make_baselines(
    task: str,
    numeric: list[str],
    categorical: list[str],
    seed: int = 0,
    n_train: int | None = None,
) -> dict[str, Pipeline]:
    """Unfitted baseline pipelines for ``task``, minus those ``skipped_baselines`` rules out.

    ``n_train`` (when known) caps k-NN's k at the training size and enables the GP size limit.
    """
    _check_task(task)
    k = 5 if n_train is None else max(1, min(5, n_train))
    if task == "classification":
        models = {
            "majority": DummyClassifier(strategy="most_frequent"),
            "logreg": LogisticRegression(max_iter=2000, random_state=seed),
            "tree": DecisionTreeClassifier(random_state=seed),
            "knn": KNeighborsClassifier(n_neighbors=k),
            "mlp": MLPClassifier(
                hidden_layer_sizes=(100,), max_iter=1000, early_stopping=False, random_state=seed
            ),
            # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its stated
            # replacement (Platt scaling fitted on cross-validated decision values).
            "svm": CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), ensemble=False),
            "rf": RandomForestClassifier(n_estimators=200, random_state=seed),
            # Histogram GBT: scikit-learn's counterpart of the paper's XGBoost column (second-order
            # boosting on binned features), and it stays fast on large tables and many classes.
            "gbt": HistGradientBoostingClassifier(random_state=seed),
        }
    else:
        models = {
            "mean": DummyRegressor(strategy="mean"),
            "ridge": Ridge(random_state=seed),
            "poly3": make_pipeline(PolynomialFeatures(3), Ridge(alpha=1e-3, random_state=seed)),
            "tree": DecisionTreeRegressor(random_state=seed),
            "knn": KNeighborsRegressor(n_neighbors=k),
            "mlp": _scaled_target(MLPRegressor(max_iter=2000, random_state=seed)),
            "svm": _scaled_target(SVR(kernel="rbf")),
            "rf": RandomForestRegressor(n_estimators=200, random_state=seed),
            "gbt": HistGradientBoostingRegressor(random_state=seed),
            # Started at RBF(1) + noise 1, the marginal-likelihood search stops where noise
            # explains everything on oscillating targets (cosine_1d: RAE 0.99 against the paper's
            # 0.035). A short length scale and low noise start avoids that optimum, and on
            # tables small enough to afford it, restarts guard against other ones.
            "gp": _scaled_target(
                GaussianProcessRegressor(
                    kernel=RBF(length_scale=0.1) + WhiteKernel(noise_level=0.1),
                    normalize_y=True,
                    n_restarts_optimizer=2 if (n_train or 0) <= GP_RESTART_MAX_TRAIN else 0,
                    random_state=seed,
                )
            ),
        }
    for name in skipped_baselines(task, n_train or 0, len(numeric) + len(categorical)):
        del models[name]
    return {
        name: Pipeline([("prep", _preprocessor(numeric, categorical)), ("model", model)])
        for name, model in models.items()
    }


_C = [1.0, 0.1, 10.0, 100.0, 1000.0]
_GAMMA = ["scale", 0.1, 1.0, 10.0, 100.0]  # on standardised features; two circles wants about 1-10
_TREES = {"max_depth": [None, 3, 5, 10], "min_samples_leaf": [1, 5]}
_LEAVES = [1, 3, 10]  # random forests: the classifier's default max_features is "sqrt", the regressor's 1.0
_MLP = {"hidden_layer_sizes": [(100,), (100, 100)], "alpha": [1e-4, 1e-2, 1.0]}
_GRIDS: dict[str, dict[str, dict[str, list]]] = {
    "classification": {
        "logreg": {"model__C": [1.0, 0.1, 10.0, 0.01, 100.0]},
        "tree": {f"model__{k}": v for k, v in _TREES.items()},
        "mlp": {f"model__{k}": v for k, v in _MLP.items()},
        "svm": {"model__estimator__C": _C, "model__estimator__gamma": _GAMMA},
        "rf": {"model__min_samples_leaf": _LEAVES, "model__max_features": ["sqrt", 1.0]},
        "gbt": {"model__learning_rate": [0.1, 0.03, 0.3], "model__min_samples_leaf": [20, 5]},
    },
    "regression": {
        "ridge": {"model__alpha": [1.0, 0.01, 0.1, 10.0, 100.0]},
        "poly3": {"model__ridge__alpha": [1e-3, 1e-5, 0.1, 10.0]},
        "tree": {f"model__{k}": v for k, v in _TREES.items()},
        # Left at its defaults the MLP stops after ~50 epochs on cosine_1d (RAE 0.99); a deeper,
        # faster-learning one reaches 0.17 there.
        "mlp": {**{f"model__regressor__{k}": v for k, v in _MLP.items()},
                "model__regressor__learning_rate_init": [1e-3, 1e-2]},
        "svm": {"model__regressor__C": _C, "model__regressor__gamma": _GAMMA},
        "rf": {"model__min_samples_leaf": _LEAVES, "model__max_features": [1.0, "sqrt"]},
        # HistGB's min_samples_leaf=20 is coarse for 200 rows (piecewise_1d: 0.19 against 0.125).
        "gbt": {"model__learning_rate": [0.1, 0.03, 0.3], "model__min_samples_leaf": [20, 5, 2]},
    },
}


def baseline_grid(task: str, name: str, n_train: int) -> dict[str, list]:
    """The settings tried for one baseline, its defaults first (a tie keeps them); {} = none.

    The GP has none: it fits its kernel by marginal likelihood. k-NN's k stays within the rows.
    """
    _check_task(task)
    if name == "knn":
        ks = [k for k in (5, 1, 2, 3, 8, 12, 20) if k <= n_train] or [n_train]
        grid = {"model__n_neighbors": ks}
        if task == "regression":
            grid["model__weights"] = ["uniform", "distance"]
        return grid
    return dict(_GRIDS[task].get(name, {}))


def choose_settings(
    model: Pipeline,
    grid: dict[str, list],
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    task: str,
) -> dict:
    """The grid point that scores best on the validation rows (accuracy, or MAE for regression).

    Each point is fitted on the training rows only, as LIFT is. A point that fails to fit scores
    nothing; if every point fails, the error propagates.
    """
    if not grid or len(X_val) == 0:
        return {}
    X = pd.concat([X_train, X_val])
    y = np.concatenate([np.asarray(y_train), np.asarray(y_val)])
    n = len(X_train)
    search = GridSearchCV(
        clone(model),
        grid,
        scoring="accuracy" if task == "classification" else "neg_mean_absolute_error",
        cv=[(np.arange(n), np.arange(n, len(X)))],
        refit=False,
        error_score=np.nan,
    )
    search.fit(X, y)
    if np.all(np.isnan(search.cv_results_["mean_test_score"])):
        raise LiftError("every setting tried failed to fit on the training rows")
    return dict(search.best_params_)


def describe_settings(params: dict) -> str:
    """Chosen settings as people read them: 'C=100, gamma=1' rather than pipeline paths."""
    return ", ".join(f"{key.split('__')[-1]}={value}" for key, value in params.items())


def _align_proba(proba: np.ndarray, model_classes: Sequence, classes: Sequence) -> np.ndarray:
    """Reorder predict_proba's columns (model.classes_ order) into the order of ``classes``."""
    index = {label: k for k, label in enumerate(classes)}
    stray = [label for label in model_classes if label not in index]
    if stray:
        raise LiftError(
            f"The model knows class {stray[0]!r}, which is not among {list(classes)}; "
            "pass every class the target can take."
        )
    aligned = np.zeros((proba.shape[0], len(classes)))
    for column, label in enumerate(model_classes):
        aligned[:, index[label]] = proba[:, column]
    return aligned


def evaluate(
    model: object,
    X_train: pd.DataFrame,
    y_train: Sequence | np.ndarray,
    X_test: pd.DataFrame,
    y_test: Sequence | np.ndarray,
    task: str,
    classes: Sequence | None = None,
    fit_params: dict | None = None,
    predict_params: dict | None = None,
) -> dict:
    """Fit, predict and score one model (baseline or LIFT) the same way; errors propagate.

    Returns ``{"metrics": {...}, "pred": array, "proba": array | None}``; ``proba``'s columns follow
    ``classes`` (default: the sorted labels of train and test). The invalid-answer count comes
    from the model's ``n_invalid_`` after ``predict`` (0 for models that cannot fail to answer).
    """
    _check_task(task)
    start = time.perf_counter()
    model.fit(X_train, y_train, **(fit_params or {}))
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    pred = np.asarray(model.predict(X_test, **(predict_params or {})))
    n_invalid = int(getattr(model, "n_invalid_", 0))
    proba = None
    if task == "classification":
        if classes is None:
            classes = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
        if hasattr(model, "predict_proba"):
            raw = np.asarray(model.predict_proba(X_test, **(predict_params or {})), dtype=float)
            proba = _align_proba(raw, getattr(model, "classes_", classes), classes)
    predict_seconds = time.perf_counter() - start

    invalid = getattr(model, "invalid_mask_", None)
    if task == "classification":
        scored = pred
        if invalid is not None and np.any(invalid):
            scored = pred.astype(object)
            scored[np.asarray(invalid, dtype=bool)] = None  # unreadable answers count wrong, not as their fallback
        metrics = classification_metrics(y_test, scored, proba, classes, n_invalid)
    else:
        metrics = regression_metrics(y_test, pred, n_invalid)
    metrics["fit_seconds"] = fit_seconds
    metrics["predict_seconds"] = predict_seconds
    return {"metrics": metrics, "pred": pred, "proba": proba}


def run_baselines(
    task: str,
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    split_train_idx: Sequence[int] | np.ndarray,
    split_test_idx: Sequence[int] | np.ndarray,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
    split_val_idx: Sequence[int] | np.ndarray | None = None,
) -> dict[str, dict]:
    """Evaluate every baseline on one split; one that fails becomes ``{"error": ...}``.

    The split indices are positional (``frame.iloc``). With validation rows (and at most
    ``TUNE_MAX_TRAIN`` training rows) each baseline's settings are chosen on them first
    (``baseline_grid``); the choice is in ``metrics["params"]`` ({} = defaults). Each entry is
    ``evaluate``'s result, or ``{"error": message}`` when the model raised, or
    ``{"skipped": reason}`` when the data size rules it out (see ``skipped_baselines``).
    ``progress(label, done, total)`` is called before each baseline is fitted; it may raise to
    end the comparison there (a stopped run), which is not caught as that baseline's failure.
    """
    _check_task(task)
    if target not in frame.columns:
        raise LiftError(f"Target column {target!r} is not in the table; pick an existing column.")
    if target in features:
        raise LiftError(f"The target {target!r} is also a feature; remove it from the features.")
    numeric, categorical = split_columns(frame, features)
    train, test = frame.iloc[np.asarray(split_train_idx)], frame.iloc[np.asarray(split_test_idx)]
    val = frame.iloc[np.asarray([] if split_val_idx is None else split_val_idx, dtype=int)]
    if len(train) > TUNE_MAX_TRAIN:
        val = val.iloc[:0]
    y_train, y_val, y_test = train[target].to_numpy(), val[target].to_numpy(), test[target].to_numpy()
    n_missing = int(pd.isna(y_train).sum() + pd.isna(y_val).sum() + pd.isna(y_test).sum())
    if n_missing:
        raise LiftError(
            f"The target {target!r} is missing in {n_missing} of the chosen rows; drop those rows."
        )
    classes = None
    if task == "classification":
        classes = np.unique(np.concatenate([y_train, y_test]))
    else:
        y_train, y_val, y_test = y_train.astype(float), y_val.astype(float), y_test.astype(float)

    results: dict[str, dict] = {
        name: {"skipped": reason}
        for name, reason in skipped_baselines(task, len(train), len(features)).items()
    }
    models = make_baselines(task, numeric, categorical, seed=seed, n_train=len(train))
    for done, (name, model) in enumerate(models.items()):
        if progress is not None:
            progress(BASELINE_LABELS.get(name, name), done, len(models))
        try:
            params = choose_settings(
                model, baseline_grid(task, name, len(train)),
                train[features], y_train, val[features], y_val, task,
            )
            results[name] = evaluate(
                model.set_params(**params), train[features], y_train, test[features], y_test,
                task, classes,
            )
            results[name]["metrics"]["params"] = params
        except Exception as exc:  # one baseline failing must not sink the comparison
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results
