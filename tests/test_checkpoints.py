"""A killed LIFT run carries on from its checkpoint and ends where an unbroken run ends: same
weights, same validation history, same best epoch. The "kill" is a cancel after a checkpoint; the
second fit is a fresh estimator, as a fresh process would build."""

import json

import numpy as np
import pytest
import torch

from lift_core.errors import LiftError
from lift_core.estimator import LiftClassifier
from lift_core.experiment import CHECKPOINT_REQUEST, RunRequest, clear_checkpoints, open_checkpoints
from lift_core.training import STATE_FILE, latest_checkpoint
from test_lm_tiny import iris, tiny_config  # noqa: F401 (iris: a fixture)


def _lora(est) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in est.lm_.model.named_parameters() if "lora_" in k}


def _stopped_after(step: int):
    seen = {"n": 0}

    def stop() -> bool:
        seen["n"] += 1
        return seen["n"] > step

    return stop


@pytest.fixture(scope="module")
def unbroken(iris):
    X, y, Xv, yv = iris
    return LiftClassifier(tiny_config(), target="species").fit(X, y, eval_set=(Xv, yv))


@pytest.mark.parametrize("kill_after, minutes", [(8, 0.0), (6, 60.0)], ids=["mid-epoch", "epoch-end"])
def test_a_killed_fit_carries_on_to_the_unbroken_result(iris, unbroken, tmp_path, kill_after, minutes, monkeypatch):
    monkeypatch.setattr("lift_core.training.CHECKPOINT_MINUTES", minutes)
    X, y, Xv, yv = iris
    folder = tmp_path / "ckpt"
    first = LiftClassifier(tiny_config(), target="species")
    first.fit(X, y, eval_set=(Xv, yv), should_stop=_stopped_after(kill_after), checkpoint_dir=folder)
    assert first.train_result_.cancelled
    saved = latest_checkpoint(folder)
    # every step when minutes=0 (the stop comes before step 9's save); at epoch ends only otherwise
    assert saved is not None and saved.name == f"checkpoint-{kill_after}"
    assert [p.name for p in folder.iterdir()] == [saved.name]  # older checkpoints are removed

    events: list[dict] = []
    again = LiftClassifier(tiny_config(), target="species").fit(X, y, eval_set=(Xv, yv), checkpoint_dir=folder,
                                                               on_event=events.append)
    result, want = again.train_result_, unbroken.train_result_
    assert result.resumed_at_steps == [kill_after]
    assert [e["step"] for e in events if e["kind"] == "train"][0] == kill_after + 1
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
    assert result.train_tokens == pytest.approx(want.train_tokens, rel=0.25)  # the same order: both parts counted


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
    open_checkpoints(RunRequest(data="iris", lift=tiny_config(), baselines=False), folder)  # baselines: no matter
    with pytest.raises(LiftError, match="differs in seed"):
        open_checkpoints(RunRequest(data="iris", seed=1, lift=tiny_config()), folder)
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
