"""Every metric against values worked out by hand on tiny arrays (arithmetic in the comments)."""

import math

import numpy as np
import pytest

from lift_core.errors import LiftError
from lift_core.metrics import classification_metrics, main_metric, regression_metrics, summarize


def test_accuracy_and_macro_f1_with_string_labels():
    # accuracy = 3 right of 4 = 0.75
    # class a: TP=1 FP=0 FN=1 -> P=1, R=1/2, F1 = 2*1*0.5/1.5 = 2/3
    # class b: TP=2 FP=1 FN=0 -> P=2/3, R=1, F1 = 2*(2/3)/(5/3) = 4/5
    # macro F1 = (2/3 + 4/5) / 2 = 11/15
    out = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["macro_f1"] == pytest.approx(11 / 15)
    assert out["invalid_rate"] == 0.0
    assert out["n"] == 4
    assert "roc_auc" not in out and "log_loss" not in out  # no proba given


def test_invalid_answers_count_as_wrong_and_are_reported():
    # Two of four answers are unparsable (None, "??"): they are wrong, never dropped.
    # accuracy = 2/4 = 0.5; invalid_rate = 2/4 = 0.5
    # class 0: TP=1 FP=0 FN=0 -> F1 = 1
    # class 1: TP=1 FP=0 FN=1 -> P=1, R=1/2, F1 = 2/3
    # class 2: TP=0 -> F1 = 0
    # macro F1 = (1 + 2/3 + 0) / 3 = 5/9
    out = classification_metrics([0, 1, 1, 2], [0, 1, None, "??"], n_invalid=2)
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["macro_f1"] == pytest.approx(5 / 9)
    assert out["invalid_rate"] == pytest.approx(0.5)


def test_binary_roc_auc_uses_classes_1_and_log_loss():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    y_true = ["no", "no", "yes", "yes"]
    # Scores of "yes" (classes[1]): negatives 0.1, 0.4; positives 0.35, 0.8.
    # Pairs (pos > neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> AUC = 3/4
    # log loss = -(ln .9 + ln .6 + ln .35 + ln .8)/4
    #          = (0.1053605 + 0.5108256 + 1.0498221 + 0.2231436)/4 = 0.4722880
    out = classification_metrics(y_true, ["no", "no", "no", "yes"], proba, classes=["no", "yes"])
    assert out["roc_auc"] == pytest.approx(0.75)
    assert out["log_loss"] == pytest.approx(0.4722880, abs=1e-6)
    # Same information with the classes listed the other way round: classes[1] = "no" is now the
    # positive class and column 1 holds P(no) = .9, .6, .65, .2. Pairs "no" row > "yes" row:
    # .9>.65 yes, .9>.2 yes, .6>.65 no, .6>.2 yes -> AUC = 3/4 (scoring P(no) against "yes" as
    # the positive, a mix-up of order, would give 1/4).
    swapped = classification_metrics(y_true, y_true, proba[:, ::-1], classes=["yes", "no"])
    assert swapped["roc_auc"] == pytest.approx(0.75)


def test_multiclass_roc_auc_is_one_vs_rest_macro():
    y_true = ["cat", "cat", "dog", "dog", "eel", "eel"]
    proba = np.array(
        [
            [0.6, 0.2, 0.2],
            [0.3, 0.4, 0.3],
            [0.2, 0.5, 0.3],
            [0.5, 0.3, 0.2],
            [0.1, 0.2, 0.7],
            [0.4, 0.1, 0.5],
        ]
    )
    # cat: pos {.6,.3} vs neg {.2,.5,.1,.4}: .6 beats 4, .3 beats 2 -> 6/8 = 0.75
    # dog: pos {.5,.3} vs neg {.2,.4,.2,.1}: .5 beats 4, .3 beats 3 -> 7/8 = 0.875
    # eel: pos {.7,.5} vs neg {.2,.3,.3,.2}: all 8 pairs -> 1.0
    # macro = (0.75 + 0.875 + 1) / 3 = 0.875
    out = classification_metrics(y_true, y_true, proba, classes=["cat", "dog", "eel"])
    assert out["roc_auc"] == pytest.approx(0.875)


def test_log_loss_with_a_zero_probability_is_finite():
    # Row 2's true class has probability 0 -> clipped to 1e-15, rows renormalised:
    # loss = (-ln(1/(1+1e-15)) - ln(1e-15/(1+1e-15))) / 2 ≈ (0 + 15*ln 10) / 2 = 17.2693882
    out = classification_metrics([0, 1], [0, 0], np.array([[1.0, 0.0], [1.0, 0.0]]), classes=[0, 1])
    assert math.isfinite(out["log_loss"])
    assert out["log_loss"] == pytest.approx(17.2693882, rel=1e-6)


def test_single_class_truth_omits_roc_auc_but_keeps_log_loss():
    # log loss = -(ln .8 + ln .6)/2 = (0.2231436 + 0.5108256)/2 = 0.3669846
    out = classification_metrics([1, 1], [1, 1], np.array([[0.2, 0.8], [0.4, 0.6]]), classes=[0, 1])
    assert "roc_auc" not in out
    assert out["log_loss"] == pytest.approx(0.3669846, abs=1e-6)


def test_classification_rejects_bad_shapes_and_unknown_truth():
    with pytest.raises(LiftError, match="shape"):
        classification_metrics([0, 1], [0, 1], np.ones((2, 3)) / 3, classes=[0, 1])
    with pytest.raises(LiftError, match="not among the classes"):
        classification_metrics([0, 2], [0, 1], classes=[0, 1])
    with pytest.raises(LiftError, match="predictions"):
        classification_metrics([0, 1], [0])


def test_regression_metrics_by_hand():
    # errors 0,1,0,2 -> rmse = sqrt((0+1+0+4)/4) = sqrt(1.25); mae = 3/4
    # mean y = 2.5, sum|y-mean| = 1.5+.5+.5+1.5 = 4 -> rae = 3/4
    # SS_tot = 2.25+.25+.25+2.25 = 5, SS_res = 5 -> r2 = 0
    # 3*rmse = 3.35 > every error -> nothing filtered, rae_filtered = rae
    out = regression_metrics([1, 2, 3, 4], [1, 3, 3, 6], n_invalid=1)
    assert out["rmse"] == pytest.approx(math.sqrt(1.25))
    assert out["mae"] == pytest.approx(0.75)
    assert out["r2"] == pytest.approx(0.0)
    assert out["rae"] == pytest.approx(0.75)
    assert out["rae_filtered"] == pytest.approx(0.75)
    assert out["n_filtered"] == 0
    assert out["invalid_rate"] == pytest.approx(0.25)
    assert out["n"] == 4


def test_rae_filter_drops_a_planted_outlier():
    y_true = np.arange(10.0)  # 0..9
    y_pred = y_true + np.array([1, -1, 0, 0, 0, 0, 0, 0, 0, 100])
    # rmse = sqrt((1+1+10000)/10) = sqrt(1000.2) = 31.626; 3*rmse = 94.88 < 100 -> row 9 dropped
    # raw: sum|e| = 102, mean y = 4.5, sum|y-4.5| = 2*(4.5+3.5+2.5+1.5+.5) = 25 -> rae = 4.08
    # filtered (y = 0..8): sum|e| = 2, mean 4, sum|y-4| = 2*(4+3+2+1) = 20 -> rae = 0.1
    out = regression_metrics(y_true, y_pred)
    assert out["rmse"] == pytest.approx(math.sqrt(1000.2))
    assert out["mae"] == pytest.approx(10.2)
    assert out["rae"] == pytest.approx(4.08)
    assert out["rae_filtered"] == pytest.approx(0.1)
    assert out["n_filtered"] == 1
    # r2 = 1 - 10002 / 82.5 (SS_tot of 0..9 = 2*(20.25+12.25+6.25+2.25+.25))
    assert out["r2"] == pytest.approx(1 - 10002 / 82.5)


def test_constant_truth_gives_nan_rae_not_a_crash():
    # rmse = sqrt(1/3), mae = 1/3; sum|y-mean| = 0 -> rae, rae_filtered and r2 are NaN
    out = regression_metrics([3, 3, 3], [3, 4, 3])
    assert out["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert out["mae"] == pytest.approx(1 / 3)
    assert math.isnan(out["rae"]) and math.isnan(out["rae_filtered"]) and math.isnan(out["r2"])


def test_regression_refuses_nan_predictions():
    with pytest.raises(LiftError, match="fallback"):
        regression_metrics([1.0, 2.0], [1.0, float("nan")])


def test_summarize_uses_population_std_and_common_keys():
    runs = [{"accuracy": 0.8, "extra": 1.0}, {"accuracy": 0.9}, {"accuracy": 1.0}]
    # mean = 0.9; population std = sqrt((0.01 + 0 + 0.01)/3) = 0.0816497 (ddof=1 would be 0.1)
    out = summarize(runs)
    assert set(out) == {"accuracy"}
    assert out["accuracy"]["mean"] == pytest.approx(0.9)
    assert out["accuracy"]["std"] == pytest.approx(math.sqrt(0.02 / 3))
    assert out["accuracy"]["n"] == 3


def test_summarize_skips_nan_runs():
    # values 1, NaN, 3 -> mean 2, population std sqrt((1+1)/2) = 1, n = 2
    out = summarize([{"rae": 1.0}, {"rae": float("nan")}, {"rae": 3.0}])
    assert out["rae"] == {"mean": 2.0, "std": 1.0, "n": 2.0}
    assert summarize([]) == {}


def test_main_metric():
    assert main_metric("classification") == ("accuracy", True)
    assert main_metric("regression") == ("rmse", False)
    with pytest.raises(LiftError):
        main_metric("ranking")
