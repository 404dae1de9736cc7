"""The run store: runs, events, logs, cancellation, many writers, and dead processes reconciled."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lift_core.errors import LiftError
from lift_core.store import (
    ACTIVE,
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    WORKER_LOG,
    WORKER_LOG_LINES,
    RunStore,
    workspace_dir,
)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "ws")


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_create_get_list(store: RunStore) -> None:
    first = store.create_run(
        {"lr": 1e-4, "rank": 8},
        name="one",
        dataset="iris.csv",
        model="smol",
        method="lora",
        task="classification",
    )
    second = store.create_run({"lr": 2e-4})
    assert first != second
    run = store.get(first)
    assert run["status"] == QUEUED and QUEUED in ACTIVE
    assert run["config"] == {"lr": 1e-4, "rank": 8}
    assert (run["name"], run["dataset"], run["model"], run["method"], run["task"]) == (
        "one", "iris.csv", "smol", "lora", "classification",
    )
    assert run["cancel_requested"] is False and run["metrics"] is None
    assert store.run_dir(first).is_dir() and store.run_dir(first) == store.root / "runs" / first
    assert [r["id"] for r in store.list_runs()] == [second, first]
    assert store.get("nope") is None
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_run_ids_sort_by_time_and_explicit_ids(store: RunStore) -> None:
    rid = store.create_run({})
    assert len(rid) == len("20260101-120000-abcd") and rid[8] == "-"
    assert store.create_run({}, run_id="my-run") == "my-run"
    with pytest.raises(LiftError, match="already exists"):
        store.create_run({}, run_id="my-run")
    with pytest.raises(LiftError, match="not allowed"):
        store.create_run({}, run_id="../escape")


def test_unknown_run_is_a_clear_error(store: RunStore) -> None:
    unknown = r"no run 'ghost' in .*runs\.db; list runs with `python -m lift_core runs`"
    for call in (
        lambda: store.add_event("ghost", "train"),
        lambda: store.events("ghost"),
        lambda: store.log_tail("ghost"),
        lambda: store.finish("ghost", SUCCEEDED),
        lambda: store.mark_running("ghost", os.getpid()),
        lambda: store.cancel_requested("ghost"),
        lambda: store.delete("ghost"),
        lambda: store.run_dir("ghost"),
    ):
        with pytest.raises(LiftError, match=unknown):
            call()


def test_events_and_log_tail(store: RunStore) -> None:
    rid = store.create_run({})
    store.add_event(rid, "train", step=1, epoch=0.5, loss=2.0, learning_rate=1e-4, total_steps=4)
    store.add_event(rid, "eval", step=2, epoch=1.0, accuracy=0.75)
    store.add_event(rid, "train", step=2, epoch=1.0, loss=1.5)
    for i in range(60):
        store.log(rid, f"line {i}\n")
    train = store.events(rid, kind="train")
    assert [(e["step"], e["loss"]) for e in train] == [(1, 2.0), (2, 1.5)]
    assert train[0]["epoch"] == 0.5 and train[0]["total_steps"] == 4
    assert [e["kind"] for e in store.events(rid, limit=3)] == ["train", "eval", "train"]
    newer = store.events(rid, since=train[0]["t"])
    assert newer[0]["kind"] == "eval" and len(newer) == 2 + 60
    assert store.log_tail(rid) == [f"line {i}" for i in range(10, 60)]
    assert store.log_tail(rid, n=2) == ["line 58", "line 59"]
    assert store.get(rid)["heartbeat"] is not None


def test_finish_statuses(store: RunStore) -> None:
    ok, bad = store.create_run({}), store.create_run({})
    store.mark_running(ok, os.getpid())
    assert store.get(ok)["status"] == RUNNING and store.get(ok)["started"] is not None
    store.finish(
        ok, SUCCEEDED, metrics={"accuracy": 0.9}, artifacts={"adapter": Path("/x/adapter")}
    )
    run = store.get(ok)
    assert run["status"] == SUCCEEDED and run["finished"] >= run["started"]
    assert run["metrics"] == {"accuracy": 0.9} and run["artifacts"] == {"adapter": "/x/adapter"}
    store.finish(bad, FAILED, error="out of memory; lower the batch size")
    assert store.get(bad)["error"] == "out of memory; lower the batch size"
    assert [r["id"] for r in store.list_runs(status=SUCCEEDED)] == [ok]
    with pytest.raises(LiftError, match="can only finish"):
        store.finish(ok, RUNNING)
    with pytest.raises(LiftError, match="already ended"):
        store.mark_running(ok, os.getpid())


def test_cancel_flag(store: RunStore) -> None:
    rid = store.create_run({})
    store.mark_running(rid, os.getpid())
    assert store.cancel_requested(rid) is False
    store.request_cancel(rid)
    assert store.cancel_requested(rid) is True
    assert store.get(rid)["status"] == RUNNING  # the live trainer stops itself and reports
    store.finish(rid, CANCELLED)
    assert store.get(rid)["status"] == CANCELLED


def test_cancelling_a_queued_run_without_a_process_ends_it(store: RunStore) -> None:
    rid = store.create_run({})
    store.request_cancel(rid)
    assert store.get(rid)["status"] == CANCELLED
    with pytest.raises(LiftError, match="already ended"):
        store.mark_running(rid, os.getpid())


def _write_events(store: RunStore, rid: str, worker: int, n: int) -> None:
    for i in range(n):
        store.add_event(rid, "train", step=i, worker=worker)


def test_concurrent_writers_and_a_reader(store: RunStore) -> None:
    rid = store.create_run({})
    # spawn, not fork: a forked child would inherit the reader thread's open SQLite state
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_events, args=(store, rid, w, 50)) for w in range(3)]
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:  # the same store object, from another thread
            while not done.is_set():
                seen.append(len(store.events(rid)))
                store.list_runs()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    done.set()
    thread.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert not errors
    assert seen == sorted(seen)  # readers never see events vanish
    events = store.events(rid)
    assert len(events) == 150
    for w in range(3):
        assert sorted(e["step"] for e in events if e["worker"] == w) == list(range(50))


def _open_and_create(root: Path, start: threading.Barrier) -> None:
    start.wait()
    RunStore(root).create_run({})


def test_processes_creating_the_same_store_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_and_create, args=(tmp_path, start)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(RunStore(tmp_path).list_runs()) == 4


def test_reconcile_marks_a_killed_process_failed(store: RunStore) -> None:
    rid = store.create_run({})
    proc = _sleeper()
    store.mark_running(rid, proc.pid)
    assert store.get(rid)["status"] == RUNNING
    proc.kill()
    proc.wait()
    run = store.get(rid)
    assert run["status"] == FAILED
    assert run["error"] == (
        f"the training process (pid {proc.pid}) ended without reporting a result — it was killed or "
        "crashed; it left no output here (a command-line run's is in its terminal; a process the system "
        "ended for lack of memory leaves none)"
    )
    assert run["finished"] is not None
    assert store.reconcile() == []
    assert store.log_tail(rid) == []


def test_a_worker_that_dies_without_a_word_gets_its_last_output_in_the_log(store: RunStore) -> None:
    """A crash before the run could record anything (an old config, a native crash) leaves only
    its worker's stdout and stderr: the log the page shows must hold their end."""
    rid = store.create_run({})
    lines = [f"line {i}" for i in range(30)] + ["", "Traceback (most recent call last):", "TypeError: boom"]
    (store.run_dir(rid) / WORKER_LOG).write_text("\n".join(lines) + "\n")
    proc = _sleeper()
    store.mark_running(rid, proc.pid)
    proc.kill()
    proc.wait()
    assert store.reconcile() == [rid]
    run = store.get(rid)
    assert run["status"] == FAILED and run["error"].endswith("its last output is at the end of the log")
    tail = store.log_tail(rid)
    assert tail[0] == f"the training process's last output ({WORKER_LOG}):"
    assert tail[1:] == [line for line in lines if line][-WORKER_LOG_LINES:]
    assert tail[-1] == "TypeError: boom"
    assert store.reconcile() == [] and len(store.log_tail(rid)) == len(tail)  # logged once


def test_reconcile_treats_a_zombie_as_dead(store: RunStore) -> None:
    rid = store.create_run({})
    proc = _sleeper()
    try:
        store.mark_running(rid, proc.pid)
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead but not reaped: a zombie
        assert store.reconcile() == [rid]
    finally:
        proc.wait()
    assert store.get(rid)["status"] == FAILED


def test_a_cancel_requested_dead_run_becomes_cancelled(store: RunStore) -> None:
    rid = store.create_run({})
    proc = _sleeper()
    store.mark_running(rid, proc.pid)
    store.request_cancel(rid)
    proc.kill()
    proc.wait()
    run = store.list_runs()[0]
    assert (run["id"], run["status"], run["error"]) == (rid, CANCELLED, None)


def test_a_reused_pid_counts_as_dead(store: RunStore) -> None:
    rid = store.create_run({})
    store.mark_running(rid, os.getpid())
    assert store.reconcile() == []
    with sqlite3.connect(store.db_path) as conn:  # as if our pid had belonged to an older process
        conn.execute("UPDATE runs SET pid_started = pid_started - 3600 WHERE id = ?", (rid,))
    assert store.reconcile() == [rid]
    assert store.get(rid)["status"] == FAILED


def test_delete(store: RunStore) -> None:
    rid = store.create_run({})
    store.mark_running(rid, os.getpid())
    (store.run_dir(rid) / "adapter.safetensors").write_bytes(b"x")
    store.log(rid, "hello")
    with pytest.raises(LiftError, match="still running"):
        store.delete(rid)
    assert store.get(rid) is not None and store.run_dir(rid).is_dir()
    store.finish(rid, SUCCEEDED)
    store.delete(rid)
    assert store.get(rid) is None
    assert not (store.root / "runs" / rid).exists()
    with sqlite3.connect(store.db_path) as conn:
        left = conn.execute("SELECT COUNT(*) FROM events WHERE run_id = ?", (rid,)).fetchone()
    assert left[0] == 0


def test_lift_home_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home" / "lift"
    monkeypatch.setenv("LIFT_HOME", str(home))
    assert workspace_dir() == home.resolve() and home.is_dir()
    store = RunStore()
    assert store.db_path == home.resolve() / "runs.db" and store.db_path.exists()
    monkeypatch.delenv("LIFT_HOME")
    monkeypatch.chdir(tmp_path)
    assert workspace_dir() == (tmp_path / "workspace").resolve()


def test_a_newer_schema_is_refused(store: RunStore) -> None:
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(LiftError, match="newer LIFT Studio"):
        RunStore(store.root)


def test_requeue_reopens_an_ended_run_and_drops_the_steps_to_train_again(store: RunStore) -> None:
    run_id = store.create_run({})
    store.mark_running(run_id, os.getpid())
    for step in (1, 2, 3, 4):
        store.add_event(run_id, "train", step=step, loss=1.0 / step)
    store.add_event(run_id, "eval", step=2, epoch=1, val_accuracy=0.5)
    store.add_event(run_id, "eval", step=4, epoch=2, val_accuracy=0.6)
    store.add_event(run_id, "stage", stage="test", done=8, total=30)
    store.log(run_id, "before the crash")
    store.request_cancel(run_id)
    store.finish(run_id, CANCELLED, error="cancelled by request")
    started = store.get(run_id)["started"]
    later = store.create_run({})

    store.requeue(run_id, keep_through_step=2)
    run = store.get(run_id)
    assert run["status"] == QUEUED and run["started"] == started  # wall time counts from the first start
    assert RunStore.queue_order(run) > RunStore.queue_order(store.get(later))  # it joins the end of the queue
    assert (run["pid"], run["pgid"], run["finished"], run["error"], run["cancel_requested"]) == (None, None, None, None, False)
    assert [e["step"] for e in store.events(run_id, kind="train")] == [1, 2]
    assert [e["epoch"] for e in store.events(run_id, kind="eval")] == [1]
    assert store.events(run_id, kind="stage") == []  # the old process's work in progress is not the new one's
    assert store.log_tail(run_id) == ["before the crash"]
    store.mark_running(run_id, os.getpid())  # a worker can take it again
    assert store.get(run_id)["status"] == RUNNING


@pytest.mark.parametrize("status", [QUEUED, SUCCEEDED])
def test_only_a_failed_or_cancelled_run_is_requeued(store: RunStore, status: str) -> None:
    run_id = store.create_run({})
    if status == SUCCEEDED:
        store.finish(run_id, SUCCEEDED)
    with pytest.raises(LiftError, match=f"is {status}; only a failed or cancelled run"):
        store.requeue(run_id, keep_through_step=0)
    assert store.get(run_id)["status"] == status


def test_a_store_from_before_the_queue_column_gains_it(tmp_path: Path) -> None:
    db = tmp_path / "old" / "runs.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL, started REAL, finished REAL, status TEXT, "
                 "pid INTEGER, pgid INTEGER, pid_started REAL, config TEXT, error TEXT, name TEXT, dataset TEXT, "
                 "model TEXT, method TEXT, task TEXT, metrics TEXT, artifacts TEXT, cancel_requested INTEGER "
                 "DEFAULT 0, heartbeat REAL)")
    conn.execute("INSERT INTO runs (id, created, status) VALUES ('old', 5.0, 'queued')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = RunStore(db.parent)
    old = store.get("old")
    assert old["queued"] is None and RunStore.queue_order(old) == (5.0, "old")  # queued when it was created
    assert RunStore.queue_order(old) < RunStore.queue_order(store.get(store.create_run({})))
