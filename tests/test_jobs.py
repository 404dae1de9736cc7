"""Jobs run in their own process group, queue one at a time, and never stay 'running' when dead."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lift_core import jobs
from lift_core.config import LiftConfig, LoraSettings, TrainSettings
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.store import RunStore
from lift_core.training import STATE_FILE, latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def tiny_request(epochs=1, seed=0, batch_size=8):
    cfg = LiftConfig(model="tiny", lora=LoraSettings(r=4, alpha=8),
                     train=TrainSettings(epochs=epochs, batch_size=batch_size, bf16_cpu=False, seed=seed))
    return RunRequest(data="iris", seed=seed, baselines=False, lift=cfg)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "ws")


def test_a_submitted_run_trains_in_its_own_process_group_and_succeeds(store):
    run_id = jobs.submit(tiny_request(), store)
    run = store.get(run_id)
    assert run["status"] == "running" and run["pid"] != os.getpid()
    assert os.getpgid(run["pid"]) == run["pid"] != os.getpgid(0)  # its own group, not the page's
    done = jobs.wait(run_id, store, timeout_s=180)
    assert done["status"] == "succeeded", (done["error"], store.log_tail(run_id))
    assert (store.run_dir(run_id) / "adapter.zip").exists()
    assert store.events(run_id, kind="train")


def test_the_same_request_twice_is_one_run_and_others_queue(store):
    first = jobs.submit(tiny_request(epochs=30), store)
    assert jobs.submit(tiny_request(epochs=30), store) == first  # double click / second tab
    second = jobs.submit(tiny_request(epochs=1, seed=1), store)
    assert second != first
    assert store.get(second)["status"] == "queued"  # one job at a time
    jobs.stop(first, store)
    assert store.get(first)["status"] == "cancelled"
    wait_for(lambda: store.get(second)["status"] != "queued", timeout=30)  # the queue moves on
    assert jobs.wait(second, store, timeout_s=180)["status"] == "succeeded"


def test_stop_ends_the_process_and_marks_the_run_cancelled(store):
    run_id = jobs.submit(tiny_request(epochs=50), store)
    wait_for(lambda: store.events(run_id, kind="train"), timeout=120)  # training has started
    pid = store.get(run_id)["pid"]
    jobs.stop(run_id, store)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert store.get(run_id)["status"] == "cancelled"


def test_stopping_a_command_line_run_spares_the_shell_that_started_it(store, tmp_path):
    """A run the command line trains itself sits in its caller's process group (a script, a pipe
    to tee): Stop ends that process and its children, not the group."""
    run_id = store.create_run({})
    child = (f"import os, time; from lift_core.store import RunStore; "
             f"RunStore({str(store.root)!r}).mark_running({run_id!r}, os.getpid()); time.sleep(120)")
    script = f'"$0" -c "$1"; echo spared > {tmp_path}/after; sleep 120'
    shell = subprocess.Popen(["sh", "-c", script, sys.executable, child], start_new_session=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        run = wait_for(lambda: (r := store.get(run_id))["status"] == "running" and r)
        assert run["pid"] != shell.pid and run["pgid"] is None  # not its group's leader: no group kept
        jobs.stop(run_id, store, grace_s=2.0)
        assert not psutil.pid_exists(run["pid"]) or psutil.Process(run["pid"]).status() == psutil.STATUS_ZOMBIE
        wait_for(lambda: (tmp_path / "after").exists(), timeout=10)
        assert shell.poll() is None  # the shell carried on past its child
        assert store.get(run_id)["status"] == "cancelled"
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


def test_a_stopped_run_keeps_the_step_it_stopped_at_and_carries_on_from_it(store):
    run_id = jobs.submit(tiny_request(epochs=2, batch_size=1), store)  # one row a step: ~90 steps an epoch
    wait_for(lambda: len(store.events(run_id, kind="train")) >= 3, timeout=120)
    jobs.stop(run_id, store)
    run = store.get(run_id)
    assert run["status"] == "cancelled" and run["error"] == "cancelled by request"  # it ended itself, not killed
    last = store.events(run_id, kind="train")[-1]
    per_epoch = last["total_steps"] // 2
    assert 3 <= last["step"] < per_epoch  # well inside the first epoch, whose end is not saved yet
    assert jobs.carry_on_step(store, run) == last["step"]
    jobs.carry_on(run_id, store)
    _carried_on(store, run_id, last["step"])


def test_a_worker_killed_by_hand_shows_as_failed_within_seconds(store):
    run_id = jobs.submit(tiny_request(epochs=50), store)
    pid = store.get(run_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    run = wait_for(lambda: (r := store.get(run_id))["status"] == "failed" and r, timeout=10)
    assert "ended without reporting a result" in run["error"]


def _carried_on(store, run_id, step):
    """The run ran to the end from ``step``, with each step's progress recorded once."""
    run = jobs.wait(run_id, store, timeout_s=300)
    assert run["status"] == "succeeded", (run["error"], store.log_tail(run_id))
    assert run["metrics"]["models"]["lift"]["resumed_at_steps"] == [step]
    steps = [e["step"] for e in store.events(run_id, kind="train")]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > step  # none lost, none twice
    assert [e["epoch"] for e in store.events(run_id, kind="eval")] == list(range(1, len(run["metrics"]["history"]) + 1))
    assert f"carrying on from the checkpoint at step {step}" in store.log_tail(run_id, 200)
    assert not (store.run_dir(run_id) / jobs.CHECKPOINTS).exists()  # spent once the run finished
    return run


def test_a_worker_killed_mid_run_carries_on_from_its_checkpoint(store):
    run_id = jobs.submit(tiny_request(epochs=4), store)  # seconds an epoch: killed long before the last
    folder = store.run_dir(run_id) / jobs.CHECKPOINTS
    wait_for(lambda: latest_checkpoint(folder), timeout=180)  # the first epoch is saved
    os.killpg(store.get(run_id)["pgid"], signal.SIGKILL)  # a crash: no chance to record anything
    run = wait_for(lambda: (r := store.get(run_id))["status"] == "failed" and r, timeout=10)
    step = jobs.carry_on_step(store, run)
    per_epoch = store.events(run_id, kind="train")[-1]["total_steps"] // 4
    assert step is not None and step % per_epoch == 0  # an epoch's end: a timed save is 10 minutes off
    assert jobs.carry_on(run_id, store) == run_id
    _carried_on(store, run_id, step)


def test_a_crashed_run_carried_on_trains_the_epochs_it_had_left(crashed_copy):
    workspace, run_id, step = crashed_copy
    store = RunStore(workspace)
    jobs.carry_on(run_id, store)
    run = _carried_on(store, run_id, step)
    assert [h["epoch"] for h in run["metrics"]["history"]] == [1, 2, 3]


def test_a_run_that_cannot_carry_on_says_why(crashed_copy, finished_copy):
    workspace, crashed, _ = crashed_copy
    store = RunStore(workspace)
    with pytest.raises(LiftError, match="has finished; there is nothing to carry on"):
        jobs.carry_on(finished_copy[1], RunStore(finished_copy[0]))
    shutil.rmtree(store.run_dir(crashed) / jobs.CHECKPOINTS)
    with pytest.raises(LiftError, match="has no checkpoint to carry on from"):
        jobs.carry_on(crashed, store)
    prefix = store.create_run({}, method="prefix")
    store.finish(prefix, "failed", error="boom")
    with pytest.raises(LiftError, match="prefix method, which keeps no checkpoints"):
        jobs.carry_on(prefix, store)
    with pytest.raises(LiftError, match="no run 'nope'"):
        jobs.carry_on("nope", store)
    assert store.get(crashed)["status"] == "failed"  # a refusal changes nothing


def test_a_run_whose_table_is_gone_is_refused_before_it_is_reopened(tmp_path):
    store = RunStore(tmp_path / "ws")
    request = RunRequest(data=str(tmp_path / "gone.csv"), lift=tiny_request().lift)
    run_id = store.create_run({"request": request.to_dict()}, method="lift")
    folder = store.run_dir(run_id) / jobs.CHECKPOINTS / "checkpoint-12"
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_text("{}")
    store.add_event(run_id, "train", step=13, loss=1.0)
    store.finish(run_id, "failed", error="killed")
    with pytest.raises(LiftError, match="gone.csv"):
        jobs.carry_on(run_id, store)
    assert store.get(run_id)["status"] == "failed" and store.events(run_id, kind="train")  # untouched


def test_a_run_is_not_carried_on_while_a_run_with_its_settings_is_active(tmp_path):
    store = RunStore(tmp_path / "ws")
    request = tiny_request()
    run_id = store.create_run({"request": request.to_dict(), "request_key": jobs.request_key(request)},
                              method="lift")
    folder = store.run_dir(run_id) / jobs.CHECKPOINTS / "checkpoint-12"
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_text("{}")
    store.finish(run_id, "failed", error="killed")
    twin = store.create_run({"request": request.to_dict(), "request_key": jobs.request_key(request)})  # queued
    with pytest.raises(LiftError, match=f"run '{twin}' with the same settings is queued"):
        jobs.reopen(run_id, store)
    assert store.get(run_id)["status"] == "failed"
    store.finish(twin, "cancelled")
    assert jobs.reopen(run_id, store) == request and store.get(run_id)["status"] == "queued"


def test_discarding_checkpoints_frees_them_and_ends_the_offer(crashed_copy):
    workspace, run_id, _ = crashed_copy
    store = RunStore(workspace)
    assert jobs.checkpoint_bytes(store, run_id) > 0
    jobs.discard_checkpoints(run_id, store)
    assert jobs.checkpoint_bytes(store, run_id) == 0 and not (store.run_dir(run_id) / jobs.CHECKPOINTS).exists()
    run = store.get(run_id)
    assert jobs.carry_on_step(store, run) is None and run["status"] == "failed"
    assert (store.run_dir(run_id)).is_dir()  # the run itself stays
