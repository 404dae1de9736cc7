"""Jobs run in their own process group, queue one at a time, and never stay 'running' when dead."""

import os
import signal
import time

import psutil
import pytest

from lift_core import jobs
from lift_core.config import LiftConfig, LoraSettings, TrainSettings
from lift_core.experiment import RunRequest
from lift_core.store import RunStore


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


def test_a_worker_killed_by_hand_shows_as_failed_within_seconds(store):
    run_id = jobs.submit(tiny_request(epochs=50), store)
    pid = store.get(run_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    run = wait_for(lambda: (r := store.get(run_id))["status"] == "failed" and r, timeout=10)
    assert "ended without reporting a result" in run["error"]
