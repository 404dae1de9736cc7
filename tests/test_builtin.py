"""Built-in data sets: every name loads offline with the right shape, task and randomness."""

import numpy as np
import pytest

from lift_core.builtin import BUILTIN, Builtin, load_builtin, regression_truth
from lift_core.data import make_split, prepare
from lift_core.errors import LiftError

SHAPES = {
    "iris": (150, 5, 3),
    "wine": (178, 14, 3),
    "breast_cancer": (569, 31, 2),
    "digits": (1797, 65, 10),
    "diabetes": (442, 11, None),
    "circles": (2000, 3, 2),
    "two_circles": (2000, 3, 2),
    "blobs": (2000, 3, 4),
    "moons": (2000, 3, 2),
    "nine_clusters": (1998, 3, 9),
}
FUNCTIONS = ("linear", "quadratic", "exponential", "cosine", "l1norm", "piecewise")
REGRESSION = [f"{f}_{d}d" for f in FUNCTIONS for d in (1, 2)]


def test_names_are_exactly_the_expected_ones():
    assert set(BUILTIN) == set(SHAPES) | set(REGRESSION)
    assert all(isinstance(text, str) and text for text in BUILTIN.values())


@pytest.mark.parametrize("name", list(SHAPES))
def test_fixed_sets_load_and_prepare(name):
    rows, columns, n_classes = SHAPES[name]
    data = load_builtin(name)
    assert isinstance(data, Builtin) and data.fixed_sizes is None
    assert data.frame.shape == (rows, columns)
    assert data.task == ("regression" if n_classes is None else "classification")
    assert not data.frame.isna().any().any()
    prep = prepare(data.frame, data.target, task=data.task)
    assert (len(prep.classes) if prep.classes else None) == n_classes


def test_sklearn_names_and_labels():
    iris = load_builtin("iris")
    assert "sepal length" in iris.frame.columns and iris.target == "species"
    assert sorted(iris.frame["species"].unique()) == ["setosa", "versicolor", "virginica"]
    assert sorted(load_builtin("wine").frame["class"].unique()) == ["class_0", "class_1", "class_2"]
    cancer = load_builtin("breast_cancer").frame["diagnosis"].value_counts()
    assert (cancer["benign"], cancer["malignant"]) == (357, 212)
    digits = load_builtin("digits").frame
    assert "pixel_0_0" in digits.columns and digits["digit"].dtype.kind == "i"
    diabetes = load_builtin("diabetes").frame
    assert diabetes["age"].min() >= 18  # unscaled ages in years, not centred values


def test_synthetic_classification_sets_ignore_the_seed():
    for name in ("circles", "two_circles", "blobs", "moons", "nine_clusters"):
        a, b = load_builtin(name, seed=0), load_builtin(name, seed=7)
        assert list(a.frame.columns) == ["x1", "x2", "y"] and a.frame["y"].dtype.kind == "i"
        assert a.frame.equals(b.frame)


def test_nine_clusters_sit_on_a_grid():
    frame = load_builtin("nine_clusters").frame
    centres = frame.groupby("y")[["x1", "x2"]].mean().round().to_numpy()
    expected = [(i, j) for i in (-10, 0, 10) for j in (-10, 0, 10)]
    assert sorted(map(tuple, centres)) == sorted(expected)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_sets(name):
    data = load_builtin(name, seed=0)
    dims = int(name[-2])
    assert data.task == "regression" and data.fixed_sizes == (200, 50, 100)
    assert list(data.frame.columns) == [f"x{i + 1}" for i in range(dims)] + ["y"]
    assert len(data.frame) == 350
    x = data.frame.iloc[:, :dims].to_numpy()
    assert x.min() > -10 and x.max() < 10
    truth = regression_truth(name[:-3], x)
    y = data.frame["y"].to_numpy()
    np.testing.assert_allclose(y[250:], truth[250:])  # test targets are noise-free, as in LIFT
    noise = np.std(y[:250] - truth[:250]) / np.std(truth[:250])
    assert 0.07 < noise < 0.13
    other = load_builtin(name, seed=1).frame
    assert not np.allclose(other["y"], data.frame["y"])
    assert load_builtin(name, seed=0).frame.equals(data.frame)


def test_regression_functions_match_lift_definitions():
    x = np.array([[-10.0], [-4.0], [0.0], [5.0], [10.0]])
    np.testing.assert_allclose(regression_truth("linear", x).ravel(), 0.9 * x.ravel())
    np.testing.assert_allclose(regression_truth("quadratic", x), [9, -6.12, -9, -4.5, 9])
    exponential = regression_truth("exponential", x)
    np.testing.assert_allclose(exponential, [-9, -8.221, -6.854, -2.590, 9], atol=1e-3)
    np.testing.assert_allclose(regression_truth("cosine", x), [-9, 9, 9, 0, -9], atol=1e-9)
    np.testing.assert_allclose(regression_truth("l1norm", x), [9, -1.8, -9, 0, 9])
    np.testing.assert_allclose(regression_truth("piecewise", x), [-9, 4.5, 0, -2.25, 9])
    two = np.array([[-10.0, 10.0], [2.0, 4.0]])
    np.testing.assert_allclose(regression_truth("linear", two), [0.0, 2.7])


def test_regression_split_uses_the_fixed_blocks():
    data = load_builtin("cosine_1d", seed=2)
    prep = prepare(data.frame, data.target, task=data.task)
    split = make_split(prep, seed=2, fixed_sizes=data.fixed_sizes)
    assert split.test.tolist() == list(range(250, 350))


def test_unknown_name_lists_the_choices():
    with pytest.raises(LiftError, match="unknown built-in data set 'iriss'") as info:
        load_builtin("iriss")
    assert "iris" in str(info.value) and "piecewise_2d" in str(info.value)
