"""The run store: one SQLite file (WAL) that training processes write and the pages poll.

Training runs in its own process; it records progress here and the web pages, in other
processes, read it. A run's status is decided by the store *and* by whether its process is
still alive (``reconcile``), so a killed or crashed trainer never leaves a run "running" forever.

Each thread of each process gets its own connection (never shared, even after a fork), so one
``RunStore`` can be used from any number of threads, and any number of processes can open the
same workspace at once. Keep the workspace on a local disk: SQLite's WAL needs shared memory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from lift_core.errors import LiftError

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE = frozenset({QUEUED, RUNNING})
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
STATUSES = ACTIVE | FINAL

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
# psutil derives create_time from the boot time, which NTP can nudge; pid reuse within a second
# of the original process's start would need the whole pid space to wrap.
_CREATE_TIME_TOLERANCE_S = 1.0
_JSON_COLUMNS = ("config", "metrics", "artifacts")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED_EVENT_KEYS = frozenset({"run_id", "t", "kind", "step", "epoch"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL,
    started REAL,
    finished REAL,
    status TEXT,
    pid INTEGER,
    pgid INTEGER,
    pid_started REAL,
    config TEXT,
    error TEXT,
    name TEXT,
    dataset TEXT,
    model TEXT,
    method TEXT,
    task TEXT,
    metrics TEXT,
    artifacts TEXT,
    cancel_requested INTEGER DEFAULT 0,
    heartbeat REAL,
    queued REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT,
    t REAL,
    kind TEXT,
    step INTEGER,
    epoch REAL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_run_t ON events(run_id, t);
"""


def workspace_dir() -> Path:
    """Where runs, data and exports live: ``$LIFT_HOME`` if set, else ``./workspace`` (created)."""
    root = Path(os.environ.get("LIFT_HOME") or "workspace").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _to_json(value: Any) -> str:
    """JSON for the store; numpy scalars become numbers and other odd values their text."""
    return json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _process_alive(pid: int, started: float | None) -> bool:
    """True while ``pid`` runs and is the same process that was recorded (not a reused pid)."""
    if not psutil.pid_exists(pid):
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - started) > _CREATE_TIME_TOLERANCE_S:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process that exists: we cannot prove it is gone
    return True


WORKER_LOG = "worker.log"  # a queued run's worker writes its stdout and stderr here
WORKER_LOG_LINES = 20  # how much of it a run that died without a word gets in its log


def _last_output(folder: Path) -> list[str]:
    try:
        with open(folder / WORKER_LOG, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-WORKER_LOG_LINES:]


def _died_message(pid: int, output: bool) -> str:
    where = ("its last output is at the end of the log" if output else
             "it left no output here (a command-line run's is in its terminal; a process the system "
             "ended for lack of memory leaves none)")
    return f"the training process (pid {pid}) ended without reporting a result — it was killed or crashed; {where}"


class RunStore:
    """Runs, their events and logs in ``root/runs.db``; their files in ``root/runs/<id>/``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root is not None else workspace_dir()
        self.runs_root = self.root / "runs"
        self.runs_root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "runs.db"
        self._local = threading.local()
        self._init_schema()

    def __reduce__(self) -> tuple:
        """Pickle as the folder only, so a store can be handed to another process."""
        return (RunStore, (self.root,))

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection in this process (a forked child opens its own).

        Connections are kept rather than opened per operation: closing the last connection to a
        WAL database checkpoints it, which made every write cost an fsync.
        """
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            try:
                conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, much faster
            except sqlite3.Error as exc:
                raise LiftError(
                    f"cannot open the run store {self.db_path}: {exc}; check that the folder is "
                    "writable or point LIFT_HOME at another folder"
                ) from exc
            conn.row_factory = sqlite3.Row
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; writers take the lock up front so two writers never deadlock."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise LiftError(
                f"the run store {self.db_path} could not be used ({exc}); if another program "
                "holds it busy, try again — and keep the workspace on a local disk"
            ) from exc

    def _init_schema(self) -> None:
        conn = self._conn()
        # Switching to WAL (once per database file) fails at once, without waiting, while another
        # process is creating the same store, so it is retried here.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break  # now WAL, or whatever mode a file system without WAL support kept
            except sqlite3.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise LiftError(
                        f"the run store {self.db_path} stayed locked ({exc}); close other LIFT "
                        "Studio processes using it and try again"
                    ) from exc
                time.sleep(0.05)
        with self._tx(write=True) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LiftError(
                    f"the run store {self.db_path} was made by a newer LIFT Studio "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade LIFT Studio "
                    "or set LIFT_HOME to another folder"
                )
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            if "queued" not in columns:  # a store from before runs could be carried on: same schema otherwise
                conn.execute("ALTER TABLE runs ADD COLUMN queued REAL")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _unknown(self, run_id: str) -> LiftError:
        return LiftError(
            f"no run '{run_id}' in {self.db_path}; list runs with `python -m lift_core runs`"
        )

    def _require(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown(run_id)
        return row

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        run = dict(row)
        for key in _JSON_COLUMNS:
            run[key] = json.loads(run[key]) if run[key] is not None else None
        run["cancel_requested"] = bool(run["cancel_requested"])
        return run

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        config: dict,
        *,
        name: str | None = None,
        dataset: str | None = None,
        model: str | None = None,
        method: str | None = None,
        task: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a queued run and make its folder; the id sorts by creation time (UTC)."""
        if run_id is not None and not _RUN_ID.fullmatch(run_id):
            raise LiftError(
                f"run id {run_id!r} is not allowed; use up to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        for _ in range(20):
            now = time.time()
            rid = run_id or (
                datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d-%H%M%S-")
                + secrets.token_hex(2)
            )
            try:
                with self._tx(write=True) as conn:
                    conn.execute(
                        "INSERT INTO runs (id, created, queued, status, config, name, dataset, model, "
                        "method, task, cancel_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                        (rid, now, now, QUEUED, _to_json(config), name, dataset, model, method, task),
                    )
            except sqlite3.IntegrityError:
                if run_id is not None:
                    raise LiftError(
                        f"a run '{run_id}' already exists in {self.db_path}; pick another id "
                        "or delete the old run"
                    ) from None
                continue  # two runs in the same second drew the same suffix
            (self.runs_root / rid).mkdir(parents=True, exist_ok=True)
            return rid
        raise LiftError(f"could not find a free run id in {self.db_path}; try again")

    def run_dir(self, run_id: str) -> Path:
        """The run's artifact folder (created if it went missing)."""
        with self._tx() as conn:
            self._require(conn, run_id)
        path = self.runs_root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The run with its JSON fields decoded, or None; dead processes are reconciled first."""
        self.reconcile()
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._decode(row) if row is not None else None

    @staticmethod
    def queue_order(run: dict[str, Any]) -> tuple[float, str]:
        """Queued runs start in the order they joined the queue (a carried-on run joins anew)."""
        return (run.get("queued") or run["created"], run["id"])

    def list_runs(self, status: str | None = None) -> list[dict[str, Any]]:
        """All runs (or those with one status), newest first, after reconciling dead processes."""
        if status is not None and status not in STATUSES:
            raise LiftError(
                f"unknown run status {status!r}; use one of {', '.join(sorted(STATUSES))}"
            )
        self.reconcile()
        query = "SELECT * FROM runs"
        args: tuple = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._tx() as conn:
            rows = conn.execute(query + " ORDER BY created DESC, id DESC", args).fetchall()
        return [self._decode(row) for row in rows]

    def mark_running(self, run_id: str, pid: int) -> None:
        """Tie the run to its process; refuses a run that already ended (say, cancelled queued).

        The process group is recorded only when the process leads it (a worker the queue started in
        its own session): a command-line run shares its shell's, script's or pipeline's group, which
        stopping the run must not end."""
        try:
            pid_started: float | None = psutil.Process(pid).create_time()
            pgid = pid if os.getpgid(pid) == pid else None
        except (psutil.Error, OSError):
            pid_started, pgid = None, None  # already gone: reconcile will mark the run failed
        now = time.time()
        with self._tx(write=True) as conn:
            row = self._require(conn, run_id)
            if row["status"] not in ACTIVE:
                raise LiftError(
                    f"run '{run_id}' already ended ({row['status']}); start a new run instead"
                )
            conn.execute(
                "UPDATE runs SET status = ?, pid = ?, pgid = ?, pid_started = ?, "
                "started = COALESCE(started, ?), heartbeat = ? WHERE id = ?",
                (RUNNING, pid, pgid, pid_started, now, now, run_id),
            )

    def heartbeat(self, run_id: str) -> None:
        """Record that the trainer is alive and making progress."""
        with self._tx(write=True) as conn:
            if conn.execute(
                "UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id)
            ).rowcount == 0:
                raise self._unknown(run_id)

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        metrics: dict | None = None,
        artifacts: dict[str, str | Path] | None = None,
        error: str | None = None,
    ) -> None:
        """Record the run's result; metrics/artifacts left as None keep what is stored."""
        if status not in FINAL:
            raise LiftError(
                f"a run can only finish as {', '.join(sorted(FINAL))}, not {status!r}"
            )
        arts = {k: str(v) for k, v in artifacts.items()} if artifacts is not None else None
        with self._tx(write=True) as conn:
            self._require(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = ?, finished = ?, error = ?, "
                "metrics = COALESCE(?, metrics), artifacts = COALESCE(?, artifacts) WHERE id = ?",
                (
                    status,
                    time.time(),
                    error,
                    _to_json(metrics) if metrics is not None else None,
                    _to_json(arts) if arts is not None else None,
                    run_id,
                ),
            )

    def requeue(self, run_id: str, keep_through_step: int) -> None:
        """Queue a failed or cancelled run again, to carry it on from a checkpoint at
        ``keep_through_step``: its process and outcome are cleared, it joins the end of the queue,
        and its train/eval events past that step are dropped, since those steps are trained again
        (its log is kept whole)."""
        with self._tx(write=True) as conn:
            row = self._require(conn, run_id)
            if row["status"] not in (FAILED, CANCELLED):
                raise LiftError(
                    f"run '{run_id}' is {row['status']}; only a failed or cancelled run can be carried on"
                )
            conn.execute(
                "UPDATE runs SET status = ?, queued = ?, pid = NULL, pgid = NULL, pid_started = NULL, "
                "finished = NULL, error = NULL, cancel_requested = 0, heartbeat = NULL WHERE id = ?",
                (QUEUED, time.time(), run_id),
            )
            conn.execute(
                "DELETE FROM events WHERE run_id = ? AND (kind = 'stage' OR (kind IN ('train', 'eval') AND step > ?))",
                (run_id, int(keep_through_step)),
            )  # a stage is the old process's work in progress: the new one reports its own

    def request_cancel(self, run_id: str) -> None:
        """Ask the trainer to stop; a queued run with no process yet is cancelled at once."""
        with self._tx(write=True) as conn:
            row = self._require(conn, run_id)
            if row["status"] not in ACTIVE:
                return
            if row["status"] == QUEUED and row["pid"] is None:
                conn.execute(
                    "UPDATE runs SET cancel_requested = 1, status = ?, finished = ? WHERE id = ?",
                    (CANCELLED, time.time(), run_id),
                )
            else:
                conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        """Whether the user asked this run to stop (trainers poll it between steps)."""
        with self._tx() as conn:
            return bool(self._require(conn, run_id)["cancel_requested"])

    def delete(self, run_id: str) -> None:
        """Remove the run's rows and folder; refuses while its process is still alive."""
        with self._tx(write=True) as conn:
            row = self._require(conn, run_id)
            if (
                row["status"] in ACTIVE
                and row["pid"] is not None
                and _process_alive(row["pid"], row["pid_started"])
            ):
                raise LiftError(
                    f"run '{run_id}' is still running (pid {row['pid']}); cancel it and wait "
                    "for it to stop, then delete it"
                )
            conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        folder = self.runs_root / run_id
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LiftError(
                f"deleted run '{run_id}' from the store but could not remove its folder "
                f"{folder}: {exc}; remove it by hand"
            ) from exc

    def reconcile(self) -> list[str]:
        """Mark active runs whose process is gone as failed (or cancelled); return their ids."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, pid, pid_started, cancel_requested FROM runs "
                "WHERE status IN (?, ?) AND pid IS NOT NULL",
                (QUEUED, RUNNING),
            ).fetchall()
        dead = [row for row in rows if not _process_alive(row["pid"], row["pid_started"])]
        if not dead:
            return []
        changed = []
        now = time.time()
        output = {row["id"]: _last_output(self.runs_root / row["id"]) for row in dead}
        with self._tx(write=True) as conn:
            for row in dead:
                if row["cancel_requested"]:
                    status, error = CANCELLED, None
                else:
                    status, error = FAILED, _died_message(row["pid"], bool(output[row["id"]]))
                # Only if nothing changed meanwhile: the trainer may have finished, then exited.
                cur = conn.execute(
                    "UPDATE runs SET status = ?, finished = ?, error = ? "
                    "WHERE id = ? AND status IN (?, ?) AND pid = ?",
                    (status, now, error, row["id"], QUEUED, RUNNING, row["pid"]),
                )
                if cur.rowcount:
                    changed.append(row["id"])
        for run_id in changed:  # a crash's traceback or last words, where the Log panel shows them
            if output[run_id] and self.get(run_id)["status"] == FAILED:
                self.log(run_id, f"the training process's last output ({WORKER_LOG}):")
                for line in output[run_id]:
                    self.log(run_id, line)
        return changed

    # -- events and logs ---------------------------------------------------------------------

    def add_event(
        self,
        run_id: str,
        kind: str,
        step: int | None = None,
        epoch: float | None = None,
        **data: Any,
    ) -> None:
        """Append a train/eval/log event; also a heartbeat.

        Extra keyword values go into the event's JSON data and come back flattened by
        ``events``, so they may not be named run_id or t (ValueError).
        """
        clash = _RESERVED_EVENT_KEYS & data.keys()
        if clash:
            raise ValueError(f"event data may not use the reserved keys {sorted(clash)}")
        now = time.time()
        with self._tx(write=True) as conn:
            if conn.execute(
                "UPDATE runs SET heartbeat = ? WHERE id = ?", (now, run_id)
            ).rowcount == 0:
                raise self._unknown(run_id)
            conn.execute(
                "INSERT INTO events (run_id, t, kind, step, epoch, data) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, now, kind, step, epoch, _to_json(data)),
            )

    def events(
        self,
        run_id: str,
        kind: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Events oldest first as flat dicts (t, kind, step, epoch plus data).

        ``since`` keeps events strictly after that time, so a poller passes the last ``t`` it
        saw; ``limit`` keeps the first that many of those.
        """
        query = "SELECT t, kind, step, epoch, data FROM events WHERE run_id = ?"
        args: list[Any] = [run_id]
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        if since is not None:
            query += " AND t > ?"
            args.append(since)
        query += " ORDER BY t, rowid"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        with self._tx() as conn:
            self._require(conn, run_id)
            rows = conn.execute(query, args).fetchall()
        return [
            {
                "t": r["t"],
                "kind": r["kind"],
                "step": r["step"],
                "epoch": r["epoch"],
                **json.loads(r["data"]),
            }
            for r in rows
        ]

    def log(self, run_id: str, line: str) -> None:
        """Append one line to the run's log (an event of kind "log")."""
        self.add_event(run_id, "log", line=line.rstrip("\n"))

    def log_tail(self, run_id: str, n: int = 50) -> list[str]:
        """The last ``n`` log lines, oldest first."""
        with self._tx() as conn:
            self._require(conn, run_id)
            rows = conn.execute(
                "SELECT data FROM events WHERE run_id = ? AND kind = 'log' "
                "ORDER BY t DESC, rowid DESC LIMIT ?",
                (run_id, int(n)),
            ).fetchall()
        return [json.loads(r["data"]).get("line", "") for r in reversed(rows)]
