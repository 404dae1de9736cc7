"""A run's live state for the Train page, computed from the run store alone.

The worker process writes events (one ``train`` event per optimizer step, one ``eval`` per epoch,
``log`` lines); any page in any process can rebuild the whole picture from them, so a reload, a
second tab or a restarted server shows the same run. The page only renders this view.
"""

from __future__ import annotations

import time
from typing import Any

from lift_core.errors import LiftError
from lift_core.jobs import carry_on_step
from lift_core.store import ACTIVE, CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, RunStore

RUN_STATE_KEY = "lift_run"  # st.session_state key holding the run a session last started
LOG_LINES = 40

_SHARES = frozenset({"val_accuracy", "val_invalid_rate"})  # drawn on a fixed 0–1 axis, so a flat line reads right
_METRIC_LABELS = {
    "val_accuracy": "validation accuracy",
    "val_log_loss": "validation log-loss",
    "val_rmse": "validation RMSE",
    "val_invalid_rate": "validation invalid answers",
}


def format_duration(seconds: float | None) -> str:
    """Seconds for people: 45 s, 3 min 12 s, 1 h 05 min."""
    if seconds is None:
        return "–"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def more_epochs_advice(doc: dict[str, Any] | None) -> str | None:
    """Advice when validation was best at the last of several epochs: the run ended while the model
    was still learning (digits did, in our benchmarks). Its learning rate decayed to
    zero at that epoch, so only a new run with more epochs shows whether more would help."""
    history = (doc or {}).get("history") or []
    best = (((doc or {}).get("models") or {}).get("lift") or {}).get("best_epoch")
    if len(history) < 2 or best is None or best != history[-1].get("epoch"):
        return None
    return (f"Validation was best at the last epoch ({best} of {best}): the model may still have been learning. "
            f"Run again with more epochs (say {2 * int(best)}) to see whether it gains; a finished run cannot "
            "be extended, since its learning rate has decayed to zero.")


def _planned_epochs(run: dict[str, Any], last_train: dict[str, Any]) -> int | None:
    """The epochs the run trains for: its steps say, as "auto" is resolved in the worker."""
    if last_train.get("epochs"):
        return int(last_train["epochs"])
    request = (run.get("config") or {}).get("request") or {}
    epochs = ((request.get("lift") or {}).get("train") or {}).get("epochs")
    return epochs if isinstance(epochs, int) else None


def _queued_behind(store: RunStore, run: dict[str, Any]) -> int:
    """How many active runs are ahead of this queued one (the running one, and those queued before it)."""
    mine = RunStore.queue_order(run)
    return sum(1 for r in store.list_runs() if r["status"] in ACTIVE and r["id"] != run["id"]
               and (r["status"] == RUNNING or RunStore.queue_order(r) < mine))


def _message(view: dict[str, Any]) -> tuple[str, str]:
    """The one line at the top of the run panel, and how loud it is (info/success/warning/error)."""
    status = view["status"]
    if status == QUEUED:
        n = view["queued_behind"]
        if n:
            return "info", f"Queued behind {n} run{'s' if n != 1 else ''}: it starts when they end (one run at a time)."
        return "info", "Queued: starting in a moment."
    if status == RUNNING:
        if view["cancel_requested"]:
            return "warning", "Stopping …"
        if view["step"] == 0:
            return "info", "Preparing: loading the model and the table …"
        if view["resuming"]:
            return "info", f"Carrying on from step {view['step']}: loading the model and the table …"
        if view["stage"] is not None:
            return "info", view["stage"]["text"]
        if view["total_steps"] and view["step"] >= view["total_steps"]:
            return "info", "Training done; testing LIFT on the held-out rows and fitting the baselines …"
        parts = [f"Epoch {view['epoch']:.1f}" + (f" of {view['epochs']}" if view["epochs"] else ""),
                 f"step {view['step']} of {view['total_steps']}"]
        if view["loss"] is not None:
            parts.append(f"loss {view['loss']:.3f}")
        if view["eta_s"] is not None:
            parts.append(f"about {format_duration(view['eta_s'])} of training left")
        return "info", "Training: " + " · ".join(parts)
    if status == SUCCEEDED:
        best = f"; best validation epoch {view['best_epoch']}" if view["best_epoch"] is not None else ""
        if view["resumed_at_steps"]:  # its wall time would count the time it lay stopped
            took = f", carried on at step {', '.join(map(str, view['resumed_at_steps']))}"
        else:
            took = f" in {format_duration(view['seconds'])}" if view["seconds"] is not None else ""
        return "success", f"Finished{took}{best}."
    step = view["carry_on_from"]
    more = "" if step is None else f" Its checkpoint at step {step} is kept: it can carry on from there."
    if status == CANCELLED:
        return "warning", "Cancelled: the run was stopped and its process ended." + more
    if status == FAILED:
        return "error", f"Failed: {view['error'] or 'no reason was recorded; see the log'}" + more
    return "info", status


def _stage(events: list[dict[str, Any]], status: str) -> dict[str, Any] | None:
    """The work in progress between training steps (validating, testing, fitting a baseline):
    the last event when it is a stage, with its fraction done and a line saying where it is."""
    last = next((e for e in reversed(events) if e["kind"] in ("train", "eval", "stage")), None)
    if status != RUNNING or last is None or last["kind"] != "stage":
        return None
    done, total = int(last["done"]), max(int(last["total"]), 1)
    if last["stage"] == "validation":
        epoch = next((e["epoch"] for e in reversed(events) if e["kind"] == "train"), None)
        after = f" after epoch {round(epoch)}" if epoch is not None else ""
        text = f"Validating{after}: {done} of {total} validation rows read …"
    elif last["stage"] == "test":
        text = f"Training done; testing LIFT on the held-out rows: {done} of {total} read …"
    else:
        text = f"Training and testing done; fitting the baselines: {last.get('baseline')} ({done + 1} of {total}) …"
    return {"name": last["stage"], "fraction": min(1.0, done / total), "text": text}


def progress_view(store: RunStore, run_id: str, now: float | None = None, log_lines: int = LOG_LINES) -> dict[str, Any]:
    """Everything the run panel shows: status, progress, speed, curves, best epoch, error, log tail."""
    run = store.get(run_id)
    if run is None:
        raise LiftError(f"no run {run_id!r} in the workspace {store.root}; open one from the Runs page "
                        "or start a new one here")
    now = time.time() if now is None else now
    events = store.events(run_id)
    train = [e for e in events if e["kind"] == "train"]
    evals = [e for e in events if e["kind"] == "eval"]
    last = train[-1] if train else {}
    status = run["status"]
    step, total = int(last.get("step") or 0), last.get("total_steps")
    if status == SUCCEEDED:
        fraction = 1.0
    else:
        fraction = min(1.0, step / total) if total else 0.0
    # Right after a carry-on the last step shown is the old process's, until the new one has loaded.
    stage = _stage(events, status)
    resuming = (status == RUNNING and bool(last) and last["t"] < (run.get("pid_started") or 0)
                and stage is None)  # carried on from the last step, it tests without a new step
    eta = None
    if status == RUNNING and last.get("eta_s") is not None and not resuming:
        eta = max(0.0, float(last["eta_s"]) - (now - last["t"]))  # counted down between events
    elif status == SUCCEEDED:
        eta = 0.0
    metrics = run.get("metrics") or {}
    best_epoch = evals[-1].get("best_epoch") if evals else None
    if status == SUCCEEDED:
        best_epoch = ((metrics.get("models") or {}).get("lift") or {}).get("best_epoch", best_epoch)
    resumed = ((metrics.get("models") or {}).get("lift") or {}).get("resumed_at_steps") or []
    started, finished = run.get("started"), run.get("finished")
    view: dict[str, Any] = {
        "run_id": run_id,
        "name": run.get("name"),
        "status": status,
        "active": status in ACTIVE,
        "cancel_requested": bool(run.get("cancel_requested")),
        "error": run.get("error"),
        "queued_behind": _queued_behind(store, run) if status == QUEUED else 0,
        "fraction": fraction,
        "step": step,
        "total_steps": total,
        "epoch": float(last.get("epoch") or 0.0),
        "epochs": _planned_epochs(run, last),
        "eta_s": eta,
        "tokens_per_s": last.get("tokens_per_s"),
        "loss": last.get("loss"),
        "train_losses": [{"step": e["step"], "epoch": e["epoch"], "loss": e["loss"]}
                         for e in train if e.get("loss") is not None],
        "validation": [{"epoch": int(e["epoch"]), "train_loss": e.get("train_loss"), "improved": e.get("improved"),
                        **{k: v for k, v in e.items() if k.startswith("val_")}} for e in evals],
        "best_epoch": best_epoch,
        "seconds": (finished - started) if started and finished else None,
        "resuming": resuming,
        "resumed_at_steps": resumed,
        "log_tail": store.log_tail(run_id, log_lines),
        "carry_on_from": carry_on_step(store, run),
        "advice": more_epochs_advice(metrics) if status == SUCCEEDED else None,
        "stage": stage,
    }
    view["level"], view["message"] = _message(view)
    return view


def train_loss_figure(view: dict[str, Any]):
    """The training loss of every optimizer step (None before the first step)."""
    import plotly.graph_objects as go

    points = view["train_losses"]
    if not points:
        return None
    fig = go.Figure(go.Scatter(x=[p["step"] for p in points], y=[p["loss"] for p in points], mode="lines",
                               name="training loss", customdata=[p["epoch"] for p in points],
                               hovertemplate="step %{x}<br>epoch %{customdata:.2f}<br>loss %{y:.4f}<extra></extra>"))
    fig.update_layout(title="Training loss (each step)", xaxis_title="step", yaxis_title="loss",
                      height=320, margin={"t": 50, "b": 40, "l": 50, "r": 20})
    return fig


def validation_figure(view: dict[str, Any]):
    """One panel per validation metric over the epochs, the best epoch marked (None before epoch 1 ends)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = view["validation"]
    names = [k for k in _METRIC_LABELS if any(k in r for r in rows)]
    names += sorted({k for r in rows for k in r if k.startswith("val_")} - set(names))
    if not rows or not names:
        return None
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[_METRIC_LABELS.get(n, n) for n in names])
    epochs = [r["epoch"] for r in rows]
    for col, name in enumerate(names, start=1):
        fig.add_trace(go.Scatter(x=epochs, y=[r.get(name) for r in rows], mode="lines+markers",
                                 name=_METRIC_LABELS.get(name, name), showlegend=False), row=1, col=col)
        if name in _SHARES:
            fig.update_yaxes(range=[0, 1.05], row=1, col=col)
        best = view["best_epoch"]
        if best is not None:
            fig.add_vline(x=best, line_dash="dot", line_color="green", row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1 if max(epochs) <= 20 else None)  # automatic epochs reach 100
    fig.update_layout(title="Validation after each epoch (dotted: the best epoch, the one kept)",
                      height=320, margin={"t": 70, "b": 40, "l": 50, "r": 20})
    return fig
