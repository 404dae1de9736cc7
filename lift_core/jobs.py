"""Training jobs outside the page process: a queue, one running job per machine, a real Stop.

A job is a run in the store plus a worker process (``python -m lift_core worker RUN_ID``) started
in its own session, so it is its own process group: closing the browser tab, reloading the page or
restarting Streamlit never touches it, and Stop can end the worker with every child it spawned.
Status always comes from the store plus process liveness (``RunStore.reconcile``), so a worker
that dies shows as failed instead of "running" forever. A LIFT run keeps checkpoints in its folder
while it trains, so one that failed or was stopped can be carried on instead of started again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil

from lift_core.errors import LiftError
from lift_core.experiment import RunRequest, clear_checkpoints
from lift_core.runs_table import rerun_request
from lift_core.store import ACTIVE, CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, WORKER_LOG, RunStore
from lift_core.training import CHECKPOINT_MINUTES, checkpoint_step, latest_checkpoint

CHECKPOINTS = "checkpoints"  # in a LIFT run's folder: what "carry on" starts from
ROOT = Path(__file__).resolve().parents[1]


def request_key(request: RunRequest) -> str:
    """Identical requests share a key: a double click or a second tab finds the run already there."""
    canonical = json.dumps(request.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@contextmanager
def _dispatch_lock(store: RunStore) -> Iterator[None]:
    with open(store.root / "dispatch.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def submit(request: RunRequest, store: RunStore | None = None, name: str | None = None) -> str:
    """Queue a run (or return the active run with the same settings) and start it when it is its turn."""
    from lift_core.experiment import check_request

    store = store or RunStore()
    check_request(request)  # bad input is refused here, in the page, not later in a worker
    key = request_key(request)
    with _dispatch_lock(store):
        for run in store.list_runs():
            if run["status"] in ACTIVE and (run.get("config") or {}).get("request_key") == key:
                return run["id"]
        run_id = store.create_run(
            {"request": request.to_dict(), "request_key": key},
            name=name or f"{request.data} · {request.lift.model}", dataset=request.data,
            model=request.lift.model, method=request.lift.method)
    dispatch(store)
    return run_id


def dispatch(store: RunStore | None = None) -> str | None:
    """Start the oldest queued run if nothing is running; return its id (None if nothing started)."""
    store = store or RunStore()
    with _dispatch_lock(store):
        runs = store.list_runs()  # reconciles dead workers first
        if any(r["status"] == RUNNING for r in runs):
            return None
        queued = sorted((r for r in runs if r["status"] == QUEUED and r["pid"] is None), key=RunStore.queue_order)
        if not queued:
            return None
        run_id = queued[0]["id"]
        log = open(store.run_dir(run_id) / WORKER_LOG, "ab")
        env = dict(os.environ, LIFT_HOME=str(store.root), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen([sys.executable, "-m", "lift_core", "worker", run_id], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        store.mark_running(run_id, proc.pid)
        return run_id


def run_worker(run_id: str, store: RunStore | None = None) -> int:
    """The worker process's body: run the stored request, record the outcome, start the next run."""
    from lift_core.experiment import run_and_record

    store = store or RunStore()
    run = store.get(run_id)
    if run is None:
        raise LiftError(f"no run {run_id!r} in {store.db_path}")
    request = RunRequest.from_dict(run["config"]["request"])
    try:
        run_and_record(request, store, run_id, say=lambda line: print(line, flush=True),
                       checkpoint_dir=checkpoint_folder(store, run_id, request))
        return 0
    except LiftError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    finally:
        dispatch(store)


def _checkpoints(store: RunStore, run_id: str) -> Path:
    return store.runs_root / run_id / CHECKPOINTS


def checkpoint_folder(store: RunStore, run_id: str, request: RunRequest) -> Path | None:
    """Where a run keeps the checkpoints it can be carried on from; None for the prefix and prompt
    methods, which train in minutes and keep none."""
    return _checkpoints(store, run_id) if request.lift.method == "lift" else None


def carry_on_step(store: RunStore, run: dict) -> int | None:
    """The training step a failed or cancelled run would carry on from; None if it cannot be."""
    if run["status"] not in (FAILED, CANCELLED):
        return None
    latest = latest_checkpoint(_checkpoints(store, run["id"]))
    return None if latest is None else checkpoint_step(latest)


def checkpoint_bytes(store: RunStore, run_id: str) -> int:
    """Disk space a run's kept checkpoints take (0 when it has none)."""
    return sum(p.stat().st_size for p in _checkpoints(store, run_id).rglob("*") if p.is_file())


def discard_checkpoints(run_id: str, store: RunStore | None = None) -> None:
    """Free a stopped run's checkpoints, giving up carrying it on; its results and log stay."""
    store = store or RunStore()
    run = store.get(run_id)
    if run is None:
        raise LiftError(f"no run {run_id!r} in {store.db_path}; list runs with `python -m lift_core runs`")
    if run["status"] in ACTIVE:
        raise LiftError(f"run '{run_id}' is {run['status']} and using its checkpoints; stop it first")
    folder = _checkpoints(store, run_id)
    if folder.is_dir():
        clear_checkpoints(folder)


def _why_not(run: dict) -> str:
    status = run["status"]
    if status in ACTIVE:
        return f"run '{run['id']}' is still {status}; follow it on the Train page"
    if status == SUCCEEDED:
        return f"run '{run['id']}' has finished; there is nothing to carry on (run it again to train afresh)"
    if run.get("method") not in (None, "lift"):
        return (f"run '{run['id']}' used the {run['method']} method, which keeps no checkpoints (it trains in "
                "minutes): run it again with the same settings")
    return (f"run '{run['id']}' has no checkpoint to carry on from (one is kept at each epoch's end and every "
            f"{CHECKPOINT_MINUTES:.0f} minutes, in the run's folder): run it again with the same settings")


def reopen(run_id: str, store: RunStore, claim_pid: int | None = None) -> RunRequest:
    """Queue a failed or cancelled run again, to carry on from its last checkpoint; return its request.

    With ``claim_pid`` the run is marked running in that process at once (the command line trains
    it itself), so no page's ``dispatch`` starts a worker for it as well.
    """
    from lift_core.experiment import check_request

    with _dispatch_lock(store):
        run = store.get(run_id)
        if run is None:
            raise LiftError(f"no run {run_id!r} in {store.db_path}; list runs with `python -m lift_core runs`")
        step = carry_on_step(store, run)
        if step is None:
            raise LiftError(_why_not(run))
        request = rerun_request(run)
        check_request(request)  # its data file may be gone: say so here, not later in a worker
        key = request_key(request)
        twin = next((r for r in store.list_runs() if r["status"] in ACTIVE and r["id"] != run_id
                     and (r.get("config") or {}).get("request_key") == key), None)
        if twin is not None:  # as submit does: the same settings are trained once at a time
            raise LiftError(f"run '{twin['id']}' with the same settings is {twin['status']}: follow it on the "
                            f"Train page, or stop it before carrying run '{run_id}' on")
        store.requeue(run_id, keep_through_step=step)
        store.log(run_id, f"carrying on from the checkpoint at step {step}")
        if claim_pid is not None:
            store.mark_running(run_id, claim_pid)
    return request


def carry_on(run_id: str, store: RunStore | None = None) -> str:
    """Queue a failed or cancelled LIFT run to carry on from its last checkpoint, and start it when
    it is its turn."""
    store = store or RunStore()
    reopen(run_id, store)
    dispatch(store)
    return run_id


def record_here(request: RunRequest, store: RunStore) -> str:
    """A new run, recorded as running in this process (the command line trains it itself): claimed
    under the queue's lock, so no page's ``dispatch`` starts a worker for it as well."""
    with _dispatch_lock(store):
        run_id = store.create_run({"request": request.to_dict(), "request_key": request_key(request)},
                                  name=f"{request.data} · {request.lift.model}", dataset=request.data,
                                  model=request.lift.model, method=request.lift.method)
        store.mark_running(run_id, os.getpid())
    return run_id


STOP_WAIT_S = 30.0  # the longest a stopped run is given to finish its step and keep it


def stop(run_id: str, store: RunStore | None = None, grace_s: float = 5.0) -> None:
    """Cancel a run: ask it to stop after the step in progress (a LIFT run keeps that step as a
    checkpoint, so carrying on loses nothing), give it about two steps' time to do so, then end its
    processes so its memory is freed."""
    store = store or RunStore()
    if store.get(run_id) is None:
        raise LiftError(f"no run {run_id!r} to stop")
    with _dispatch_lock(store):  # not between dispatch's choosing this queued run and starting it
        store.request_cancel(run_id)
        run = store.get(run_id)  # a queued run is cancelled now; one dispatch just started is running
    if run["status"] == RUNNING and run.get("pid"):
        _end(int(run["pid"]), run.get("pgid"), grace_s, settle_s=_settle_seconds(store, run_id))
    store.reconcile()
    dispatch(store)


def _settle_seconds(store: RunStore, run_id: str) -> float:
    """Two steps at the run's pace so far, and a few seconds to save; none before its first step
    (loading a model has nothing to keep)."""
    last = store.events(run_id, kind="train")[-1:]
    if not last or not last[0].get("step") or last[0].get("elapsed_s") is None:
        return 0.0
    return min(STOP_WAIT_S, 3.0 + 2.0 * last[0]["elapsed_s"] / last[0]["step"])


def _end(pid: int, pgid: int | None, grace_s: float, settle_s: float = 0.0) -> None:
    """End a run's processes: its whole group when it leads one (a worker and whatever it started),
    else the process and its children only (a command-line run, in its shell's group)."""
    if pgid is not None:
        members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
    else:
        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
    if settle_s > 0:  # asked to stop: it may end by itself, having kept its step
        _, members = psutil.wait_procs(members, timeout=settle_s)
        if not members:
            return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
        else:
            for p in members:
                try:
                    p.send_signal(sig)  # psutil checks it is still the same process, not a reused pid
                except psutil.NoSuchProcess:
                    pass
        _, alive = psutil.wait_procs(members, timeout=grace_s)
        if not alive:
            return
        members = alive
    # Reap our own children so they do not linger as zombies in a long-lived page process.
    for p in members:
        try:
            p.wait(timeout=1)
        except psutil.Error:
            pass


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def wait(run_id: str, store: RunStore | None = None, timeout_s: float = 3600, poll_s: float = 0.5) -> dict:
    """Block until a run has ended (for the command line and tests); return the run."""
    store = store or RunStore()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = store.get(run_id)
        if run is None or run["status"] not in ACTIVE:
            return run or {}
        time.sleep(poll_s)
    raise LiftError(f"run {run_id} did not finish within {timeout_s:.0f} s")
