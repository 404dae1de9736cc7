"""The Train page's run panel is computed from store events alone, for every status a run can be in."""

import os
import subprocess
import sys
import time

import pytest

from lift_core.config import LiftConfig, TrainSettings
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.progress import (format_duration, more_epochs_advice, progress_view, train_loss_figure,
                                validation_figure)
from lift_core.store import RunStore


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "ws")


def new_run(store, epochs=2):
    request = RunRequest(data="iris", lift=LiftConfig(model="tiny", train=TrainSettings(epochs=epochs)))
    return store.create_run({"request": request.to_dict()}, name="iris · tiny", dataset="iris", model="tiny")


def train_steps(store, run_id, steps, total=10, steps_per_epoch=5):
    for step in steps:
        store.add_event(run_id, "train", step=step, epoch=step / steps_per_epoch, total_steps=total,
                        loss=2.0 / step, learning_rate=1e-3, tokens_per_s=100.0 * step,
                        elapsed_s=float(step), eta_s=float(total - step))


def test_automatic_epochs_are_read_from_the_steps_the_worker_resolved_them_in(store):
    run_id = new_run(store, epochs="auto")
    store.mark_running(run_id, os.getpid())
    assert progress_view(store, run_id)["epochs"] is None  # not yet resolved: no "of auto"
    store.add_event(run_id, "train", step=1, epoch=0.1, total_steps=250, epochs=25, loss=1.0)
    view = progress_view(store, run_id)
    assert view["epochs"] == 25 and view["message"].startswith("Training: Epoch 0.1 of 25 · step 1 of 250")


def test_a_queued_run_says_how_many_runs_are_ahead(store):
    first, second = new_run(store), new_run(store)
    view = progress_view(store, second)
    assert view["status"] == "queued" and view["active"]
    assert view["queued_behind"] == 1
    assert view["message"].startswith("Queued behind 1 run:")
    assert view["fraction"] == 0.0 and view["train_losses"] == [] and view["eta_s"] is None
    assert progress_view(store, first)["message"] == "Queued: starting in a moment."


def test_a_running_run_shows_steps_loss_speed_and_a_counting_down_eta(store):
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    assert progress_view(store, run_id)["message"].startswith("Preparing")
    train_steps(store, run_id, range(1, 6))
    last_t = store.events(run_id, kind="train")[-1]["t"]
    view = progress_view(store, run_id, now=last_t + 2.0)
    assert (view["step"], view["total_steps"], view["fraction"]) == (5, 10, 0.5)
    assert view["epoch"] == 1.0 and view["epochs"] == 2
    assert view["loss"] == pytest.approx(0.4) and view["tokens_per_s"] == 500.0
    assert view["eta_s"] == pytest.approx(3.0)  # 5 s left at the event, 2 s later
    assert [p["step"] for p in view["train_losses"]] == [1, 2, 3, 4, 5]
    assert view["train_losses"][0]["loss"] == pytest.approx(2.0)
    assert view["level"] == "info"
    assert view["message"] == ("Training: Epoch 1.0 of 2 · step 5 of 10 · loss 0.400 · "
                               "about 3 s of training left")
    assert progress_view(store, run_id, now=last_t + 60)["eta_s"] == 0.0  # never negative


def test_validation_per_epoch_and_the_best_epoch(store):
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    train_steps(store, run_id, range(1, 11))
    store.add_event(run_id, "eval", step=5, epoch=1, best_epoch=1, improved=True, score=[0.8, -0.5],
                    train_loss=0.4, val_accuracy=0.8, val_log_loss=0.5)
    store.add_event(run_id, "eval", step=10, epoch=2, best_epoch=1, improved=False, score=[0.7, -0.6],
                    train_loss=0.2, val_accuracy=0.7, val_log_loss=0.6)
    view = progress_view(store, run_id)
    assert view["validation"] == [
        {"epoch": 1, "train_loss": 0.4, "improved": True, "val_accuracy": 0.8, "val_log_loss": 0.5},
        {"epoch": 2, "train_loss": 0.2, "improved": False, "val_accuracy": 0.7, "val_log_loss": 0.6},
    ]
    assert view["best_epoch"] == 1
    assert view["message"].startswith("Training done")  # step 10 of 10: testing and baselines follow
    fig = validation_figure(view)
    assert [a.text for a in fig.layout.annotations] == ["validation accuracy", "validation log-loss"]
    assert [list(t.y) for t in fig.data] == [[0.8, 0.7], [0.5, 0.6]]
    assert {s.x0 for s in fig.layout.shapes} == {1}  # the best epoch marked in each panel
    assert tuple(fig.layout.yaxis.range) == (0, 1.05)  # a share keeps its 0–1 axis even when flat
    loss = train_loss_figure(view)
    assert list(loss.data[0].x) == list(range(1, 11))


def test_validation_testing_and_the_baselines_say_how_far_they_are(store):
    """Between training steps a run validates, and after them tests and fits baselines, for
    minutes on long rows: the panel shows a second bar and a line for that stage."""
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    train_steps(store, run_id, range(1, 6))
    store.add_event(run_id, "stage", stage="validation", done=8, total=24)
    view = progress_view(store, run_id)
    assert view["message"] == "Validating after epoch 1: 8 of 24 validation rows read …"
    assert view["stage"]["fraction"] == pytest.approx(1 / 3) and view["fraction"] == 0.5
    store.add_event(run_id, "eval", step=5, epoch=1, best_epoch=1, improved=True, score=[0.8], val_accuracy=0.8)
    assert progress_view(store, run_id)["stage"] is None  # validated: training goes on
    train_steps(store, run_id, range(6, 11))
    store.add_event(run_id, "stage", stage="test", done=30, total=30)
    assert progress_view(store, run_id)["message"] == "Training done; testing LIFT on the held-out rows: 30 of 30 read …"
    store.add_event(run_id, "stage", stage="baselines", done=2, total=9, baseline="random forest")
    view = progress_view(store, run_id)
    assert view["message"] == "Training and testing done; fitting the baselines: random forest (3 of 9) …"
    assert view["stage"]["fraction"] == pytest.approx(2 / 9)
    store.request_cancel(run_id)
    assert progress_view(store, run_id)["message"] == "Stopping …"
    store.finish(run_id, "cancelled")
    assert progress_view(store, run_id)["stage"] is None


def test_a_run_carried_on_from_its_last_step_shows_its_testing_not_loading(store):
    """Carried on after a stop during its test predictions it trains no step, so its last train
    event stays the old process's: the stage, not 'Carrying on … loading', is what it is doing."""
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    train_steps(store, run_id, range(1, 11))
    store.add_event(run_id, "stage", stage="test", done=8, total=30)
    store.finish(run_id, "cancelled")
    store.requeue(run_id, keep_through_step=10)
    time.sleep(1.1)  # psutil dates a process from the boot time, kept in whole seconds: start it clearly later
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # started after the stop
    try:
        store.mark_running(run_id, worker.pid)
        view = progress_view(store, run_id)
        assert view["resuming"] and view["stage"] is None and view["message"].startswith("Carrying on from step 10")
        store.add_event(run_id, "stage", stage="test", done=16, total=30)
        view = progress_view(store, run_id)
        assert not view["resuming"] and view["message"].endswith("16 of 30 read …")
    finally:
        worker.kill()


def test_no_figures_before_there_is_anything_to_draw(store):
    view = progress_view(store, new_run(store))
    assert train_loss_figure(view) is None and validation_figure(view) is None


def test_a_finished_run_is_complete_with_its_best_epoch_and_time(store):
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    train_steps(store, run_id, range(1, 11))
    store.finish(run_id, "succeeded", metrics={"models": {"lift": {"best_epoch": 2}}})
    view = progress_view(store, run_id)
    assert (view["fraction"], view["eta_s"], view["active"], view["level"]) == (1.0, 0.0, False, "success")
    assert view["best_epoch"] == 2
    assert view["message"].startswith("Finished in ") and view["message"].endswith("best validation epoch 2.")


def test_a_finished_run_best_at_its_last_epoch_advises_more_epochs(store):
    run_id = new_run(store, epochs=3)
    store.mark_running(run_id, os.getpid())
    history = [{"epoch": e, "score": s} for e, s in ((1, 0.5), (2, 0.6), (3, 0.7))]
    store.finish(run_id, "succeeded", metrics={"models": {"lift": {"best_epoch": 3}}, "history": history})
    view = progress_view(store, run_id)
    assert view["advice"].startswith("Validation was best at the last epoch (3 of 3)") and "say 6" in view["advice"]


@pytest.mark.parametrize("epochs, best", [([1, 2, 3], 2), ([1], 1), ([], None), ([1, 2, 3], None)],
                         ids=["an earlier epoch best", "one epoch only", "no validation", "no best epoch"])
def test_no_advice_unless_the_last_of_several_epochs_was_best(epochs, best):
    doc = {"models": {"lift": {"best_epoch": best}}, "history": [{"epoch": e} for e in epochs]}
    assert more_epochs_advice(doc) is None


def test_a_failed_run_shows_its_error_and_log(store):
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    store.log(run_id, "loading the model")
    store.log(run_id, "Traceback: boom")
    store.finish(run_id, "failed", error="RuntimeError: boom")
    view = progress_view(store, run_id)
    assert view["level"] == "error" and view["message"] == "Failed: RuntimeError: boom"
    assert view["error"] == "RuntimeError: boom"
    assert view["log_tail"] == ["loading the model", "Traceback: boom"]
    assert progress_view(store, run_id, log_lines=1)["log_tail"] == ["Traceback: boom"]


def test_stopping_and_cancelled(store):
    run_id = new_run(store)
    store.mark_running(run_id, os.getpid())
    train_steps(store, run_id, [1])
    store.request_cancel(run_id)
    assert progress_view(store, run_id)["message"] == "Stopping …"
    store.finish(run_id, "cancelled", error="cancelled by request")
    view = progress_view(store, run_id)
    assert view["status"] == "cancelled" and view["level"] == "warning"
    assert view["message"].startswith("Cancelled")
    assert view["fraction"] == pytest.approx(0.1) and view["eta_s"] is None


def test_an_unknown_run_is_a_clear_error(store):
    with pytest.raises(LiftError, match="no run 'nope'.*Runs page"):
        progress_view(store, "nope")


def test_durations_read_like_people_write_them():
    assert format_duration(None) == "–"
    assert format_duration(44.6) == "45 s"
    assert format_duration(192) == "3 min 12 s"
    assert format_duration(3900) == "1 h 05 min"
    assert format_duration(-3) == "0 s"


def test_a_failed_run_with_a_checkpoint_offers_to_carry_on(crashed_copy):
    workspace, run_id, step = crashed_copy
    view = progress_view(RunStore(workspace), run_id)
    assert view["status"] == "failed" and view["carry_on_from"] == step
    assert view["message"].endswith(f"Its checkpoint at step {step} is kept: it can carry on from there.")


def test_a_failed_run_without_a_checkpoint_offers_nothing(store):
    run_id = new_run(store)
    store.finish(run_id, "failed", error="RuntimeError: boom")
    view = progress_view(store, run_id)
    assert view["carry_on_from"] is None and view["message"] == "Failed: RuntimeError: boom"


def test_a_carried_on_run_says_so_until_its_new_process_trains(crashed_copy, monkeypatch):
    from lift_core import jobs

    workspace, run_id, step = crashed_copy
    store = RunStore(workspace)
    monkeypatch.setattr(jobs, "dispatch", lambda store=None: None)  # no worker: this test plays it
    jobs.carry_on(run_id, store)
    assert progress_view(store, run_id)["message"].startswith("Queued")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # started after the crash
    try:
        store.mark_running(run_id, worker.pid)
        view = progress_view(store, run_id)
        assert view["message"] == f"Carrying on from step {step}: loading the model and the table …"
        assert view["eta_s"] is None and view["fraction"] == pytest.approx(step / view["total_steps"])
        store.add_event(run_id, "train", step=step + 1, epoch=1.1, total_steps=view["total_steps"], loss=0.5,
                        eta_s=60.0)
        view = progress_view(store, run_id)
        assert view["message"].startswith("Training: ") and view["eta_s"] is not None
    finally:
        worker.kill()
        worker.wait()
    store.finish(run_id, "succeeded", metrics={"models": {"lift": {"best_epoch": 2, "resumed_at_steps": [step]}}})
    assert progress_view(store, run_id)["message"] == f"Finished, carried on at step {step}; best validation epoch 2."
