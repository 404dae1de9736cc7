"""The automatic learning rate and the settings' checks: what every run's rate comes from."""

import math

import pytest

from lift_core.config import AUTO, LiftConfig, TrainSettings, auto_learning_rate
from lift_core.errors import LiftError


def test_small_tables_keep_the_rate_chosen_on_iris_and_large_ones_fall():
    assert auto_learning_rate(96, 4) == 2e-3  # iris: 24 steps an epoch
    assert auto_learning_rate(128, 4) == 2e-3  # 32 steps: the last that keeps it
    assert auto_learning_rate(1280, 4) == pytest.approx(2e-3 * math.sqrt(32 / 320))  # circles: 6.3e-4
    assert auto_learning_rate(1280, 4) == pytest.approx(6.32e-4, rel=1e-3)
    assert auto_learning_rate(1280, 2, grad_accum=2) == auto_learning_rate(1280, 4)  # steps count, not batches
    assert auto_learning_rate(129, 4) < 2e-3  # 33 steps (the last one partial)
    assert auto_learning_rate(0, 4) == 2e-3


def test_auto_resolves_for_the_rows_and_a_number_is_kept():
    assert TrainSettings().learning_rate == AUTO
    assert TrainSettings().resolved_learning_rate(1280) == auto_learning_rate(1280, 4)
    assert TrainSettings(batch_size=8).resolved_learning_rate(1280) == auto_learning_rate(1280, 8)
    assert TrainSettings(learning_rate=5e-4).resolved_learning_rate(1280) == 5e-4


def test_a_saved_config_with_a_number_still_loads():
    cfg = LiftConfig.from_dict({"train": {"learning_rate": 2e-3}})
    cfg.validate()
    assert cfg.train.learning_rate == 2e-3


@pytest.mark.parametrize("rate", [0, 1.5, -1e-3, "fast", None])
def test_a_rate_that_is_neither_auto_nor_between_0_and_1_is_refused(rate):
    with pytest.raises(LiftError, match="learning rate must be 'auto' or a number between 0 and 1"):
        LiftConfig(train=TrainSettings(learning_rate=rate)).validate()


def test_few_steps_advice_names_the_epochs_that_reach_about_100_steps():
    from lift_core.config import few_steps_advice

    eight_rows = few_steps_advice(8, TrainSettings())  # 2 steps an epoch, 16 in all
    assert "8 training rows in batches of 4 make only 16 optimizer steps in 8 epochs" in eight_rows
    assert "Consider 50 epochs" in eight_rows
    assert few_steps_advice(8, TrainSettings(epochs=50)) is None  # 100 steps
    assert few_steps_advice(96, TrainSettings()) is None  # iris in full: 192 steps
    assert "batches of 8" in few_steps_advice(16, TrainSettings(batch_size=4, grad_accum=2))
