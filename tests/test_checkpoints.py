"""A killed or stopped LIFT run carries on from its checkpoint and ends where an unbroken run ends:
same weights, same validation history, same best epoch. The "kill" is an exception raised between
steps, the stop a cancel; the second fit is a fresh estimator, as a fresh process would build."""

import json

import numpy as np
import pytest
import torch

from lift_core.config import LoraSettings, TrainSettings
from lift_core.errors import LiftError
from lift_core.estimator import LiftClassifier
from lift_core.examples import Example, TrainCollator, training_features
from lift_core.experiment import (CHECKPOINT_REQUEST, RunRequest, checkpoints_held, clear_checkpoints,
                                  open_checkpoints, run_and_record)
from lift_core.models import load_model
from lift_core.store import RunStore
from lift_core.training import STATE_FILE, TrainingCancelled, attach_lora, latest_checkpoint, train_adapter
from test_lm_tiny import iris, tiny_config  # noqa: F401 (iris: a fixture)


def _lora(est) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in est.lm_.model.named_parameters() if "lora_" in k}


class Killed(Exception):
    """Stands for the process dying."""


def _stopped_after(step: int, kill: bool):
    """A ``should_stop`` that turns true (or, to kill, raises) at the end of step ``step + 1``."""
    seen = {"n": 0}

    def stop() -> bool:
        seen["n"] += 1
        if seen["n"] > step and kill:
            raise Killed()
        return seen["n"] > step

    return stop


@pytest.fixture(scope="module")
def unbroken(iris):
    X, y, Xv, yv = iris
    return LiftClassifier(tiny_config(), target="species").fit(X, y, eval_set=(Xv, yv))


@pytest.mark.parametrize("stop_after, minutes, kill, kept", [
    (8, 0.0, True, 8), (6, 60.0, True, 6), (8, 60.0, False, 9), (5, 60.0, False, 6), (17, 60.0, False, 18),
], ids=["killed mid-epoch", "killed at epoch end", "stopped mid-epoch", "stopped at an epoch's last step",
        "stopped at the last step"])  # 6 steps an epoch, 3 epochs
def test_a_killed_or_stopped_fit_carries_on_to_the_unbroken_result(iris, unbroken, tmp_path, stop_after, minutes,
                                                                   kill, kept, monkeypatch):
    monkeypatch.setattr("lift_core.training.CHECKPOINT_MINUTES", minutes)
    X, y, Xv, yv = iris
    folder = tmp_path / "ckpt"
    first = LiftClassifier(tiny_config(), target="species")
    with pytest.raises(Killed if kill else TrainingCancelled):
        first.fit(X, y, eval_set=(Xv, yv), should_stop=_stopped_after(stop_after, kill), checkpoint_dir=folder)
    saved = latest_checkpoint(folder)
    # killed: every step's save when minutes=0, the last epoch's end otherwise; stopped: the step it stopped at
    assert saved is not None and saved.name == f"checkpoint-{kept}"
    assert [p.name for p in folder.iterdir()] == [saved.name]  # older checkpoints are removed

    events: list[dict] = []
    again = LiftClassifier(tiny_config(), target="species").fit(X, y, eval_set=(Xv, yv), checkpoint_dir=folder,
                                                               on_event=events.append)
    result, want = again.train_result_, unbroken.train_result_
    assert result.resumed_at_steps == [kept]
    assert [e["step"] for e in events if e["kind"] == "train"][:1] == ([kept + 1] if kept < 18 else [])
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.best_epoch == want.best_epoch
    for got_epoch, want_epoch in zip(result.history, want.history):
        assert got_epoch.keys() == want_epoch.keys()
        for key, value in want_epoch.items():
            np.testing.assert_allclose(got_epoch[key], value, rtol=1e-4, err_msg=key)
    got, expected = _lora(again), _lora(unbroken)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(again.predict_proba(Xv), unbroken.predict_proba(Xv), rtol=1e-4, atol=1e-5)
    assert result.train_tokens == want.train_tokens  # both parts counted, the batch read ahead at the kill once


def _toy(rows: int = 8):
    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8), quantized=False)
    feats = training_features([Example([10, 11, 12 + i % 3], [13, lm.tokenizer.eos_token_id]) for i in range(rows)])
    return model, feats, TrainCollator(lm.tokenizer.pad_token_id)


def test_a_kill_during_validation_carries_on_by_validating_that_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr("lift_core.training.CHECKPOINT_MINUTES", 0.0)  # a timed save after every step
    settings = TrainSettings(epochs=3, batch_size=2, bf16_cpu=False)  # 4 steps an epoch
    calls = {"n": 0}

    def dies_in_epoch_2(model):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed()
        return 0.5, {}

    model, feats, collator = _toy()
    with pytest.raises(Killed):
        train_adapter(model, feats, collator, settings, "cpu", validate=dies_in_epoch_2, checkpoint_dir=tmp_path)
    # step 8 ends epoch 2: it is saved after that epoch's validation, never before it
    assert latest_checkpoint(tmp_path).name == "checkpoint-7"
    model, feats, collator = _toy()
    result = train_adapter(model, feats, collator, settings, "cpu", validate=lambda m: (0.5, {}),
                           checkpoint_dir=tmp_path)
    assert result.resumed_at_steps == [7] and [h["epoch"] for h in result.history] == [1, 2, 3]


def test_a_run_that_stopped_early_is_not_trained_again_when_carried_on(tmp_path):
    settings = TrainSettings(epochs=6, batch_size=4, early_stopping_patience=2, bf16_cpu=False)
    scores = iter([0.5, 0.7, 0.6, 0.7])  # best at epoch 2; stops after epoch 4
    model, feats, collator = _toy()
    first = train_adapter(model, feats, collator, settings, "cpu", validate=lambda m: (next(scores), {}),
                          checkpoint_dir=tmp_path)
    assert [h["epoch"] for h in first.history] == [1, 2, 3, 4]
    best = _lora_of(model)
    events: list[dict] = []
    fresh, feats, collator = _toy()
    again = train_adapter(fresh, feats, collator, settings, "cpu", validate=lambda m: pytest.fail("validated"),
                          on_event=events.append, checkpoint_dir=tmp_path)
    assert events == [] and again.resumed_at_steps == [8]
    assert again.history == first.history and again.best_epoch == 2
    for name, value in _lora_of(fresh).items():
        torch.testing.assert_close(value, best[name])
    with pytest.raises(LiftError, match="carry it on where it started"):
        train_adapter(*_toy(), settings, "cpu", validate=lambda m: (0.5, {}), bf16=True, checkpoint_dir=tmp_path)


def _lora_of(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


@pytest.mark.parametrize("kind, at, kept", [("train", 15, 16), ("eval", 24, 24)],
                         ids=["during training", "once training is over"])
def test_a_cancelled_run_carries_on_to_the_unbroken_runs_metrics(tmp_path, monkeypatch, kind, at, kept):
    """Stopped at step 16 it keeps that step; stopped after the last validation, during the test
    predictions, it keeps the last step and carrying on only predicts."""
    monkeypatch.setattr("lift_core.training.CHECKPOINT_MINUTES", 60.0)  # no timed saves: epoch ends, and the stop
    store = RunStore(tmp_path / "ws")
    request = RunRequest(data="iris", lift=tiny_config(epochs=2, batch_size=8), baselines=False)  # 12 steps an epoch

    def run(checkpoints=None, cancel_at=None):
        run_id = store.create_run({"request": request.to_dict()})

        def on_event(event):
            if event["kind"] == kind and event["step"] == cancel_at:
                store.request_cancel(run_id)

        return run_and_record(request, store, run_id, say=lambda s: None, on_event=on_event,
                              checkpoint_dir=checkpoints)

    unbroken = run()
    assert run(tmp_path / "ckpt", cancel_at=at) is None
    assert latest_checkpoint(tmp_path / "ckpt").name == f"checkpoint-{kept}"
    again = run(tmp_path / "ckpt")
    lift, want = again["models"]["lift"], unbroken["models"]["lift"]
    assert lift["resumed_at_steps"] == [kept] and want["resumed_at_steps"] == []
    assert lift["fit_seconds"] is None  # only the last part's: train_seconds sums the parts
    assert lift["accuracy"] == want["accuracy"] and lift["best_epoch"] == want["best_epoch"]
    np.testing.assert_allclose([h["val_log_loss"] for h in again["history"]],
                               [h["val_log_loss"] for h in unbroken["history"]], rtol=1e-4)
    assert not (tmp_path / "ckpt").exists()


def test_a_checkpoint_cut_off_before_its_state_file_is_not_resumed(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / STATE_FILE).write_text("{}")
    (tmp_path / "checkpoint-9").mkdir()  # killed while saving: no state file yet
    assert latest_checkpoint(tmp_path).name == "checkpoint-4"
    assert latest_checkpoint(tmp_path / "checkpoint-9") is None


def test_the_checkpoint_folder_must_be_this_runs_or_empty(tmp_path):
    request = RunRequest(data="iris", lift=tiny_config())
    folder = open_checkpoints(request, tmp_path / "ckpt")
    assert json.loads((folder / CHECKPOINT_REQUEST).read_text())["data"] == "iris"
    open_checkpoints(RunRequest(data="iris", seed=1, lift=tiny_config()), folder)  # no checkpoint yet: re-claimed
    assert json.loads((folder / CHECKPOINT_REQUEST).read_text())["seed"] == 1
    (folder / "checkpoint-5").mkdir()
    (folder / "checkpoint-5" / STATE_FILE).write_text("{}")
    open_checkpoints(RunRequest(data="iris", seed=1, lift=tiny_config(), baselines=False), folder)  # no matter
    with pytest.raises(LiftError, match="differs in seed"):
        open_checkpoints(request, folder)
    longer = RunRequest(data="iris", seed=1, lift=tiny_config())
    longer.lift.train.epochs = 16
    with pytest.raises(LiftError, match=r"differs in lift\.train\.epochs\)"):  # the setting, not all of "lift"
        open_checkpoints(longer, folder)
    with checkpoints_held(RunRequest(data="iris", seed=1, lift=tiny_config()), folder):
        with pytest.raises(LiftError, match="another run is using"):
            with checkpoints_held(RunRequest(data="iris", seed=1, lift=tiny_config()), folder):
                pass
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(LiftError, match="not empty"):
        open_checkpoints(request, tmp_path / "other")
    pair = RunRequest(data="iris", lift=tiny_config())
    pair.lift.method = "ltuning-prefix"
    with pytest.raises(LiftError, match="LIFT runs only"):
        open_checkpoints(pair, tmp_path / "pair")


def test_a_finished_runs_checkpoints_are_removed(tmp_path):
    folder = open_checkpoints(RunRequest(data="iris", lift=tiny_config()), tmp_path / "ckpt")
    (folder / "checkpoint-3").mkdir()
    (folder / "checkpoint-3" / STATE_FILE).write_text("{}")
    clear_checkpoints(folder)
    assert not folder.exists()
