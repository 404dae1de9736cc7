"""Built-in data sets by name, all offline: scikit-learn's bundled tables and LIFT's synthetic sets.

The synthetic sets follow the LIFT authors' code (github.com/UW-Madison-Lee-Lab/
LanguageInterfacedFineTuning): classification in ``classification/utils/
classification_data_generator.py`` (``DataGenerator.load_synthetic_datatsets``, used by
``prepare_data.py``), regression in ``regression/utils/regressionDataGen.py``. Their sizes, noise,
factors, seeds and function definitions are reproduced here; differences are noted where made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import datasets as skdata

from lift_core.errors import LiftError

# LIFT's DataGenerator(seed=123) draws every synthetic classification set with this seed, so a
# set is the same whatever the split seed (only the split moves between LIFT's three runs).
LIFT_SEED = 123
N_SYNTHETIC = 2000  # rows LIFT draws for each synthetic classification set
NOISE = 0.1  # LIFT's noise for circles, moons and the 9 clusters' covariance
REGRESSION_SIZES = (200, 50, 100)  # train, validation, test, as in LIFT's run_exp.py


@dataclass(frozen=True)
class Builtin:
    """A ready table: its target, task, a one-line description and, for LIFT's synthetic
    regression sets, the fixed train/validation/test sizes (rows are in that order)."""

    frame: pd.DataFrame
    target: str
    task: str
    description: str
    fixed_sizes: tuple[int, int, int] | None


# ----------------------------------------------------------------------------- scikit-learn


def _iris() -> tuple[pd.DataFrame, str]:
    bunch = skdata.load_iris()
    names = [n.removesuffix(" (cm)") for n in bunch.feature_names]
    frame = pd.DataFrame(bunch.data, columns=names)
    frame["species"] = bunch.target_names[bunch.target]
    return frame, "species"


def _wine() -> tuple[pd.DataFrame, str]:
    bunch = skdata.load_wine()
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame["class"] = bunch.target_names[bunch.target]
    return frame, "class"


def _breast_cancer() -> tuple[pd.DataFrame, str]:
    bunch = skdata.load_breast_cancer()
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame["diagnosis"] = bunch.target_names[bunch.target]
    return frame, "diagnosis"


def _digits() -> tuple[pd.DataFrame, str]:
    bunch = skdata.load_digits()
    frame = pd.DataFrame(bunch.data.astype(int), columns=bunch.feature_names)  # 0..16 counts
    frame["digit"] = bunch.target
    return frame, "digit"


def _diabetes() -> tuple[pd.DataFrame, str]:
    bunch = skdata.load_diabetes(scaled=False)
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame["progression"] = bunch.target
    return frame, "progression"


# ----------------------------------------------------------------- LIFT synthetic classification


def _xy(x: np.ndarray, y: np.ndarray) -> tuple[pd.DataFrame, str]:
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y.astype(int)})
    return frame, "y"


def _circles() -> tuple[pd.DataFrame, str]:
    x, y = skdata.make_circles(N_SYNTHETIC, noise=NOISE, factor=0.8, random_state=LIFT_SEED)
    return _xy(x, y)


def _two_circles() -> tuple[pd.DataFrame, str]:
    """LIFT: two noisy circle pairs side by side, the second shifted by 3 along x1 with its
    labels swapped (outer ring = 1), drawn with seeds 123 and 246."""
    half = N_SYNTHETIC // 2
    x1, y1 = skdata.make_circles(half, noise=NOISE, factor=0.8, random_state=LIFT_SEED)
    x2, y2 = skdata.make_circles(half, noise=NOISE, factor=0.8, random_state=LIFT_SEED * 2)
    x2[:, 0] += 3
    return _xy(np.concatenate([x1, x2]), np.concatenate([y1, 1 - y2]))


def _blobs() -> tuple[pd.DataFrame, str]:
    x, y = skdata.make_blobs(N_SYNTHETIC, n_features=2, centers=4, random_state=LIFT_SEED)
    return _xy(x, y)


def _moons() -> tuple[pd.DataFrame, str]:
    x, y = skdata.make_moons(N_SYNTHETIC, noise=NOISE, random_state=LIFT_SEED)
    return _xy(x, y)


def _nine_clusters() -> tuple[pd.DataFrame, str]:
    """LIFT: 2000 // 9 = 222 points around each of (i, j) for i, j in {-10, 0, 10}, covariance
    0.1 * I, labels 1..9. LIFT drew them from the unseeded global numpy state; here seed 123."""
    rng = np.random.default_rng(LIFT_SEED)
    per = N_SYNTHETIC // 9
    centers = [(i, j) for i in (-10, 0, 10) for j in (-10, 0, 10)]
    x = np.concatenate([rng.normal(c, np.sqrt(NOISE), size=(per, 2)) for c in centers])
    return _xy(x, np.repeat(np.arange(1, 10), per))


# --------------------------------------------------------------------- LIFT synthetic regression
# Definitions from LIFT's regression/utils/regressionDataGen.py (dataGenerate): each is the mean
# over the input coordinates of a 1-D function scaled to about (-9, 9) on (-10, 10).


def _piecewise_1d(x: np.ndarray) -> np.ndarray:
    y = np.where(x < -3, x + 6, np.where(x < 3, 0.0, x - 6))
    return ((y + 4) / 8 - 0.5) * 18


_E2 = np.exp(2.0)
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: 0.9 * x,  # LIFT: X @ beta / p with beta = 0.9 everywhere
    "quadratic": lambda x: (x**2 - 50) * 9 / 50,
    "exponential": lambda x: ((np.exp(0.2 * x) - 1 / _E2) / (_E2 - 1 / _E2) - 0.5) * 18,
    "cosine": lambda x: np.cos(0.5 * np.pi * x) * 9,
    "l1norm": lambda x: (np.abs(x) / 10 - 0.5) * 18,
    "piecewise": _piecewise_1d,
}


def regression_truth(function: str, x: np.ndarray) -> np.ndarray:
    """The noise-free target of a LIFT regression function for inputs ``x`` (rows × dims)."""
    return FUNCTIONS[function](np.asarray(x, dtype=float)).mean(axis=1)


def _regression(function: str, dims: int, seed: int) -> tuple[pd.DataFrame, str]:
    """One LIFT simulation: x ~ U(-10, 10); train+validation targets get Gaussian noise with std
    0.1 * std(f) over those 250 rows; test targets are noise-free f(x), as in LIFT's code (the
    paper's RAE is measured against the true function). Rows: 200 train, 50 val, 100 test.

    LIFT reseeded numpy with 123 in every simulation (its three runs shared x and noise and
    differed only in an unseeded train/validation shuffle); here each seed is its own draw.
    """
    rng = np.random.default_rng(seed)
    n_dev, n_test = sum(REGRESSION_SIZES[:2]), REGRESSION_SIZES[2]
    x_dev = rng.uniform(-10, 10, size=(n_dev, dims))
    x_test = rng.uniform(-10, 10, size=(n_test, dims))
    f_dev = regression_truth(function, x_dev)
    y_dev = f_dev + rng.normal(0.0, NOISE * np.std(f_dev), size=n_dev)
    x = np.concatenate([x_dev, x_test])
    frame = pd.DataFrame(x, columns=[f"x{i + 1}" for i in range(dims)])
    frame["y"] = np.concatenate([y_dev, regression_truth(function, x_test)])
    return frame, "y"


# ----------------------------------------------------------------------------------- registry

_FIXED: dict[str, tuple[str, Callable[[], tuple[pd.DataFrame, str]]]] = {
    "iris": ("Iris flowers: 150 rows, 4 measurements in cm, 3 species (scikit-learn)", _iris),
    "wine": ("Wines: 178 rows, 13 chemical measurements, 3 cultivars (scikit-learn)", _wine),
    "breast_cancer": (
        "Breast cancer biopsies: 569 rows, 30 cell-nucleus features, malignant/benign "
        "(scikit-learn)",
        _breast_cancer,
    ),
    "digits": (
        "Hand-written digits: 1797 rows, 8x8 pixel counts 0-16, 10 digits (scikit-learn)",
        _digits,
    ),
    "diabetes": (
        "Diabetes: 442 patients, 10 measurements, disease progression after a year "
        "(regression, scikit-learn)",
        _diabetes,
    ),
    "circles": ("LIFT circles: 2000 rows, two noisy concentric rings, 2 classes", _circles),
    "two_circles": (
        "LIFT two circles: 2000 rows, two pairs of noisy rings side by side, 2 classes",
        _two_circles,
    ),
    "blobs": ("LIFT blobs: 2000 rows, 4 Gaussian clusters in 2-D, 4 classes", _blobs),
    "moons": ("LIFT moons: 2000 rows, two interleaved noisy half-moons, 2 classes", _moons),
    "nine_clusters": (
        "LIFT 9 clusters: 1998 rows, 9 tight Gaussian clusters on a 3x3 grid, 9 classes",
        _nine_clusters,
    ),
}
_REGRESSION_TEXT = {
    "linear": "y = 0.9·mean(x)",
    "quadratic": "y = mean(9(x²-50)/50)",
    "exponential": "y = 18·mean((e^(x/5) - e^-2)/(e^2 - e^-2) - 0.5)",
    "cosine": "y = 9·mean(cos(πx/2))",
    "l1norm": "y = mean(18(|x|/10 - 0.5))",
    "piecewise": "y = piecewise linear, flat on (-3, 3)",
}
_REGRESSION = {
    f"{function}_{dims}d": (function, dims) for function in FUNCTIONS for dims in (1, 2)
}

BUILTIN: dict[str, str] = {name: text for name, (text, _) in _FIXED.items()} | {
    name: (
        f"LIFT regression {function} {dims}-D: {_REGRESSION_TEXT[function]}, x in (-10, 10), "
        "200 train / 50 validation / 100 noise-free test rows; the seed draws a new simulation"
    )
    for name, (function, dims) in _REGRESSION.items()
}


def load_builtin(name: str, seed: int = 0) -> Builtin:
    """Load a built-in data set by name; ``seed`` only changes LIFT's regression simulations."""
    if name in _FIXED:
        description, loader = _FIXED[name]
        frame, target = loader()
        task = "regression" if name == "diabetes" else "classification"
        return Builtin(frame, target, task, description, None)
    if name in _REGRESSION:
        frame, target = _regression(*_REGRESSION[name], seed)
        return Builtin(frame, target, "regression", BUILTIN[name], REGRESSION_SIZES)
    raise LiftError(f"unknown built-in data set {name!r}; pick one of: {', '.join(BUILTIN)}")
