"""The automatic learning rate and epochs, and the settings' checks: what every run's rate and length come from."""

import math

import pytest

from lift_core.config import AUTO, LiftConfig, TrainSettings, auto_epochs, auto_learning_rate, few_steps_advice
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


@pytest.mark.parametrize("rate", [0, 1.5, 0.6, 1e-7, -1e-3, "fast", None, True])
def test_a_rate_that_is_neither_auto_nor_in_the_pages_range_is_refused(rate):
    with pytest.raises(LiftError, match="learning rate must be 'auto' or a number from 1e-06 to 0.5"):
        LiftConfig(train=TrainSettings(learning_rate=rate)).validate()


@pytest.mark.parametrize("settings,message", [
    ({"train": {"warmup_ratio": 0.99}}, "warmup ratio must be from 0 to 0.95"),
    ({"train": {"weight_decay": -0.1}}, "weight decay must be from 0 to 1"),
    ({"train": {"seed": -1}}, "training seed must be a whole number from 0 to 4294967295"),
    ({"train": {"seed": 2**32}}, "training seed must be a whole number"),
    ({"lora": {"dropout": 0.95}}, "LoRA dropout must be from 0 to 0.9"),
    ({"lora": {"alpha": 0}}, "LoRA alpha must be at least 1"),
])
def test_settings_outside_the_train_pages_limits_are_refused(settings, message):
    """What the command line accepts, the Train page must be able to show (its inputs have limits)."""
    with pytest.raises(LiftError, match=message):
        LiftConfig.from_dict(settings).validate()


def test_the_limits_at_their_edges_are_accepted():
    LiftConfig.from_dict({"train": {"learning_rate": 0.5, "warmup_ratio": 0.95, "weight_decay": 1.0,
                                    "seed": 2**32 - 1}, "lora": {"dropout": 0.9}}).validate()


def test_auto_epochs_keep_8_and_reach_about_100_steps_on_small_tables():
    assert auto_epochs(96, 4) == 8  # iris in full: 24 steps an epoch, 192 in all
    assert auto_epochs(50, 4) == 8  # 13 steps an epoch: 104 in 8
    assert auto_epochs(48, 4) == 9  # 12 steps an epoch: 96 in 8, 108 in 9
    assert auto_epochs(8, 4) == 50  # 2 steps an epoch
    assert auto_epochs(16, 4) == 25
    assert auto_epochs(32, 4) == 13  # 8 steps an epoch: 104 steps
    assert auto_epochs(16, 2, grad_accum=2) == auto_epochs(16, 4)  # steps count, not batches
    assert auto_epochs(1, 4) == 100 and auto_epochs(0, 4) == 100


def test_auto_epochs_resolve_for_the_rows_and_a_number_is_kept():
    assert TrainSettings().epochs == AUTO
    assert TrainSettings().resolved_epochs(8) == 50
    assert TrainSettings(batch_size=1).resolved_epochs(8) == 13
    assert TrainSettings(epochs=3).resolved_epochs(8) == 3


@pytest.mark.parametrize("epochs", [0, -2, 2.5, "many", None, True])
def test_epochs_that_are_neither_auto_nor_a_whole_number_are_refused(epochs):
    with pytest.raises(LiftError, match="epochs must be 'auto' or a whole number of at least 1"):
        LiftConfig(train=TrainSettings(epochs=epochs)).validate()


def test_few_steps_advice_speaks_only_of_epochs_set_by_hand_and_names_the_automatic_ones():
    assert few_steps_advice(8, TrainSettings()) is None  # automatic: 50 epochs, 100 steps
    eight_rows = few_steps_advice(8, TrainSettings(epochs=8))  # 2 steps an epoch, 16 in all
    assert "8 training rows in batches of 4 make only 16 optimizer steps in 8 epochs" in eight_rows
    assert "Automatic epochs would train 50" in eight_rows
    assert few_steps_advice(8, TrainSettings(epochs=50)) is None  # 100 steps
    assert few_steps_advice(96, TrainSettings(epochs=8)) is None  # iris in full: 192 steps
    assert "batches of 8" in few_steps_advice(16, TrainSettings(epochs=8, batch_size=4, grad_accum=2))
