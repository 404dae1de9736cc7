"""One LIFT run end to end: data → split → fine-tune → evaluate LIFT and every baseline → files.

The command line calls ``run_experiment`` in-process; the app's worker process calls it too, so
every run, wherever it was started, lands in the same run store with the same files:
``metrics.json`` and ``adapter.zip`` in the run's folder (and in ``--out`` when given).
"""

from __future__ import annotations

import json
import numbers
import platform
import shutil
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from lift_core.baselines import evaluate, run_baselines
from lift_core.builtin import BUILTIN, load_builtin
from lift_core.bundle import write_bundle
from lift_core.config import METHOD_LABELS, PAIR_METHODS, SEED_RANGE, LiftConfig, few_steps_advice, in_range
from lift_core.data import Prepared, Split, limit_train, make_split, prepare, read_table
from lift_core.errors import LiftError
from lift_core.examples import check_fits
from lift_core.estimator import LiftClassifier, LiftRegressor, PairClassifier
from lift_core.store import RunStore
from lift_core.training import TrainingCancelled, latest_checkpoint

Say = Callable[[str], None]


@dataclass
class RunRequest:
    """What to run: the table, how to read it, and the LIFT settings."""

    data: str
    target: str | None = None
    task: str | None = None
    features: list[str] | None = None
    missing: str = "word"
    seed: int = 0
    baselines: bool = True
    train_rows: int | None = None  # use only this many training rows (learning curves); None = all
    lift: LiftConfig = field(default_factory=LiftConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lift"] = self.lift.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRequest":
        d = dict(d)
        lift = LiftConfig.from_dict(d.pop("lift", {}) or {})
        return cls(**d, lift=lift)


@dataclass
class LoadedTable:
    prepared: Prepared
    split: Split
    name: str


def load_table(request: RunRequest) -> LoadedTable:
    """Read, check and split the table a request names (a built-in name or a file path)."""
    if not (isinstance(request.seed, numbers.Integral) and in_range(request.seed, SEED_RANGE)):
        raise LiftError(f"the split seed must be a whole number from 0 to {SEED_RANGE[1]} (not {request.seed!r})")
    fixed = None
    if request.data in BUILTIN:
        builtin = load_builtin(request.data, seed=request.seed)
        frame, fixed = builtin.frame, builtin.fixed_sizes
        target = request.target or builtin.target
        task = request.task or (builtin.task if target == builtin.target else None)
        name = request.data
    else:
        path = Path(request.data)
        if not path.exists() and not path.suffix:
            raise LiftError(f"no built-in data set or file named {request.data!r}; built-in ones: "
                            f"{', '.join(BUILTIN)} (python -m lift_core datasets lists them)")
        frame = read_table(path)
        target = request.target or str(frame.columns[-1])
        task = request.task
        name = path.name
    prepared = prepare(frame, target, task=task, features=request.features, missing=request.missing)
    if fixed is not None and len(prepared.frame) != sum(fixed):
        fixed = None  # rows were dropped: the fixed blocks no longer line up, so draw the split
    split = make_split(prepared, seed=request.seed, fixed_sizes=fixed)
    if request.train_rows is not None:
        split = limit_train(prepared, split, request.train_rows, seed=request.seed)
    return LoadedTable(prepared, split, name)


def prompt_lengths(table: LoadedTable, config: LiftConfig) -> tuple[list[int], int, int]:
    """Token counts of every row's prompt, the longest answer, and the model's context length.

    Needs only the tokenizer and the model's config, so the Prompts page and the command line
    can refuse an over-long table before any weights are loaded. A pair method on a regression
    target is refused here (LiftError), as every caller would otherwise meet it as a crash.
    """
    from lift_core.examples import encode_answer, encode_prompts, end_ids
    from lift_core.models import config_context_length, load_tokenizer
    from lift_core.serialize import Serializer

    p = table.prepared
    if config.method in PAIR_METHODS and p.task != "classification":
        raise LiftError(f"{METHOD_LABELS[config.method]} does classification only, and {p.target!r} is a "
                        "regression target; use the method lift for regression")
    tok = load_tokenizer(config.model, config.trust_remote_code)
    ser = Serializer(config.prompt, p.features, p.target, p.task, p.classes)
    end = end_ids(tok, config.prompt)
    lengths = [len(ids) for ids in encode_prompts(tok, ser.prompts(p.frame))]
    if config.method in PAIR_METHODS:
        from lift_core.ltuning import encode_labels, extra_tokens, label_texts

        label_ids = encode_labels(tok, label_texts(p.target, ser.answers))
        longest = extra_tokens(config.method, config.pair, [len(i) for i in label_ids])
    elif p.task == "classification":
        longest = max(len(encode_answer(tok, a, end)) for a in ser.answers)
    else:
        longest = max(len(encode_answer(tok, ser.answer(v), end)) for v in p.frame[p.target])
    return lengths, longest, config_context_length(config.model, tok, config.trust_remote_code)


def check_request(request: RunRequest) -> LoadedTable:
    """Everything about a request that can be wrong, checked before a run is recorded."""
    from lift_core.models import resolve_quantization

    request.lift.validate()
    resolve_quantization(request.lift.quantization)
    table = load_table(request)
    lengths, longest, context = prompt_lengths(table, request.lift)
    check_fits([[0] * n for n in lengths], longest, context, list(table.prepared.frame.index))
    return table


def _parts(table: LoadedTable):
    p, s = table.prepared, table.split
    X, y = p.frame[p.features], p.frame[p.target]
    return ((X.iloc[s.train], y.iloc[s.train].to_numpy()), (X.iloc[s.val], y.iloc[s.val].to_numpy()),
            (X.iloc[s.test], y.iloc[s.test].to_numpy()))


def make_estimator(task: str, config: LiftConfig, target: str, classes: list | None = None):
    if config.method in PAIR_METHODS:
        return PairClassifier(config, target=target, classes=classes)
    if task == "classification":
        return LiftClassifier(config, target=target, classes=classes)
    return LiftRegressor(config, target=target)


# What the run's LIFT metrics hold about how it trained, apart from how it scored on the test rows.
TRAINING_FIGURES = frozenset({"trainable_parameters", "best_epoch", "learning_rate", "epochs", "train_seconds",
                              "tokens_per_s", "fit_seconds"})


def model_card(manifest: dict[str, Any]) -> str:
    m = manifest
    method = (m.get("config") or {}).get("method", "lift")
    kind = ("A LoRA adapter (LIFT: Language-Interfaced Fine-Tuning)" if method not in PAIR_METHODS else
            f"A {METHOD_LABELS[method]} adapter (trained prefix/prompt parts and head; the base model stays frozen)")
    numbers = {k: v for k, v in m["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metric_lines = "\n".join(f"- {k}: {v:.4g}" for k, v in numbers.items() if k not in TRAINING_FIGURES)
    training_lines = "\n".join(f"- {k}: {v:.4g}" for k, v in numbers.items() if k in TRAINING_FIGURES)
    return (
        f"# LIFT adapter: {m['target']} from {m['dataset']}\n\n"
        f"{kind} for `{m['base_model']}` trained with LIFT Studio "
        f"to predict `{m['target']}` ({m['task']}) from {len(m['features'])} feature(s).\n\n"
        f"Prompt template: `{m['prompt']['template']}`. Trained on {m['n_train']} rows, "
        f"best validation epoch {m.get('best_epoch')}.\n\n## Test metrics\n{metric_lines}\n\n"
        f"## Training\n{training_lines}\n\n"
        "## Use\n`python -m lift_core predict --adapter adapter.zip --data new.csv --out predictions.csv`\n"
    )


def export_adapter(estimator, path: Path, table: LoadedTable, metrics: dict[str, Any], scratch: Path) -> Path:
    """Write the adapter zip: safetensors adapter, lift.json, and a manifest for people and tools."""
    folder = estimator.save(scratch)
    p = table.prepared
    manifest = {
        **estimator.state(),
        "dataset": table.name,
        "feature_schema": {f: str(p.frame[f].dtype) for f in p.features},
        "prompt": estimator.config.prompt.to_dict() if estimator.config else {},
        "metrics": metrics,
        "n_train": int(len(table.split.train)),
        "best_epoch": estimator.train_result_.best_epoch,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return write_bundle(path, folder, manifest, model_card(manifest))


CHECKPOINT_REQUEST = "request.json"
CHECKPOINT_LOCK = ".lock"


def _differing_keys(mine: dict, theirs: dict, at: str = "") -> list[str]:
    """Dotted paths of the settings that differ (``lift.train.epochs``, not ``lift``): the message
    must say what to give the same."""
    out = []
    for k in sorted(set(mine) | set(theirs)):
        a, b = mine.get(k), theirs.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differing_keys(a, b, f"{at}{k}.")
        elif a != b:
            out.append(f"{at}{k}")
    return out


def open_checkpoints(request: RunRequest, folder: Path) -> Path:
    """``folder``, checked to hold this run's checkpoints or none: carrying on from another run's
    weights would mix two experiments without a word."""
    if request.lift.method != "lift":
        raise LiftError("checkpoints to carry a run on are kept for LIFT runs only; the prefix and prompt "
                        "methods train in minutes: drop the checkpoint folder")
    mine = json.loads(json.dumps({k: v for k, v in request.to_dict().items() if k != "baselines"}))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_REQUEST
    if path.is_file() and latest_checkpoint(folder) is not None:
        theirs = json.loads(path.read_text())
        if theirs != mine:
            differ = _differing_keys(mine, theirs)
            raise LiftError(f"{folder} holds the checkpoints of another run (it differs in {', '.join(differ)}): "
                            "give the same settings to carry that run on, or start afresh (Run again on the Runs "
                            "page, or an empty checkpoint folder)")
    elif any(p.name not in (CHECKPOINT_REQUEST, CHECKPOINT_LOCK) for p in folder.iterdir()):
        raise LiftError(f"{folder} is not empty and holds no run's checkpoints: give an empty or a new folder")
    else:  # new, or claimed by a run that failed before its first checkpoint
        path.write_text(json.dumps(mine, indent=2))
    return folder


@contextmanager
def checkpoints_held(request: RunRequest, folder: Path) -> Iterator[Path]:
    """``open_checkpoints`` with the folder locked while the run lasts: two runs carrying on from
    one folder would delete each other's checkpoints."""
    import fcntl

    open_checkpoints(request, folder)
    with open(folder / CHECKPOINT_LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LiftError(f"another run is using the checkpoints in {folder}: wait for it to end, or give "
                            "another folder") from None
        yield folder


def clear_checkpoints(folder: Path) -> None:
    """A finished run's checkpoints are spent: remove them, and the folder once it is empty."""
    for item in folder.glob("checkpoint-*"):
        shutil.rmtree(item, ignore_errors=True)
    for name in (CHECKPOINT_REQUEST, CHECKPOINT_LOCK):
        (folder / name).unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def run_experiment(request: RunRequest, store: RunStore, run_id: str, out: Path | None = None,
                   say: Say = print, on_event: Callable[[dict], None] | None = None,
                   checkpoint_dir: Path | None = None) -> dict[str, Any]:
    """Train and evaluate; record everything in the store; return the metrics document.

    With ``checkpoint_dir`` training keeps checkpoints there and, when that folder holds this
    run's, carries on from the last one; they are removed once the run has finished.
    """
    started = time.time()
    run_dir = store.run_dir(run_id)

    def event(e: dict) -> None:
        data = {k: v for k, v in e.items() if k not in ("kind", "step", "epoch")}
        store.add_event(run_id, e["kind"], step=e.get("step"), epoch=e.get("epoch"), **data)
        if on_event is not None:
            on_event(e)

    def log(line: str) -> None:
        store.log(run_id, line)
        say(line)

    table = load_table(request)
    p = table.prepared
    for w in list(p.report.get("warnings", [])) + list(table.split.warnings):
        log(f"warning: {w}")
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = _parts(table)
    log(f"{table.name}: {p.task}, target {p.target!r}, {len(p.features)} features; "
        f"{len(X_tr)} train / {len(X_val)} validation / {len(X_te)} test rows (seed {request.seed})")
    classes = list(p.classes) if p.classes is not None else None

    def stage(name: str, done: int, total: int, **more: Any) -> None:
        """Work after training, reported (the page shows how far it is) and stoppable: between
        batches of test predictions and before each baseline, a stop asked once training is over
        ends the run there, as one asked during training does."""
        event({"kind": "stage", "stage": name, "done": done, "total": total, **more})
        if store.cancel_requested(run_id):
            raise TrainingCancelled()

    est = make_estimator(p.task, request.lift, p.target, classes)
    fit_params: dict[str, Any] = {"eval_set": (X_val, y_val), "on_event": event,
                                  "should_stop": lambda: store.cancel_requested(run_id)}
    advice = few_steps_advice(len(X_tr), request.lift.train) if request.lift.method == "lift" else None
    if advice:
        log(f"note: {advice}")
    log(f"{METHOD_LABELS[request.lift.method]}: training on {request.lift.model} ...")
    with nullcontext() if checkpoint_dir is None else checkpoints_held(request, checkpoint_dir) as folder:
        if folder is not None:
            fit_params["checkpoint_dir"] = folder
        lift = evaluate(est, X_tr, y_tr, X_te, y_te, p.task, classes, fit_params=fit_params,
                        predict_params={"progress": partial(stage, "test")})
    result = est.train_result_
    if result.resumed_at_steps:
        log(f"carried on from checkpoints at steps {', '.join(map(str, result.resumed_at_steps))}")
        lift["metrics"]["fit_seconds"] = None  # the last part's only; train_seconds sums the parts
    lift_metrics = {**lift["metrics"], "method": request.lift.method, "trainable_parameters": int(est.n_trainable_),
                    "best_epoch": result.best_epoch, "learning_rate": result.learning_rate,
                    "epochs": result.epochs, "train_seconds": result.seconds,
                    "tokens_per_s": (result.train_tokens / (result.seconds - result.eval_seconds)
                                     if result.seconds > result.eval_seconds else None),
                    "device": est.lm_.device, "quantization": est.lm_.quantization,
                    "bf16": bool(getattr(est, "bf16_", False)),  # on CPU a per-machine choice: it moves the figures
                    "gradient_checkpointing": bool(getattr(est, "checkpointing_", False)),  # 4-bit: as memory needs
                    "resumed_at_steps": result.resumed_at_steps}
    models: dict[str, Any] = {"lift": lift_metrics}
    if request.baselines:
        log("baselines: settings chosen on the validation rows, fitted on the same training rows ...")
        def fitting(label: str, done: int, total: int) -> None:
            stage("baselines", done, total, baseline=label)

        for name, res in run_baselines(p.task, p.frame, p.features, p.target, table.split.train,
                                       table.split.test, request.seed, progress=fitting,
                                       split_val_idx=table.split.val).items():
            models[name] = res.get("metrics") or {k: v for k, v in res.items() if k in ("error", "skipped")}

    doc = {
        "task": p.task, "dataset": table.name, "target": p.target, "seed": request.seed,
        "method": request.lift.method,
        "classes": classes, "n_train": int(len(X_tr)), "n_val": int(len(X_val)), "n_test": int(len(X_te)),
        "models": models, "history": result.history,
        "machine": f"{platform.machine()} {platform.system()}, {est.lm_.device}",
        "seconds": time.time() - started,
    }
    metrics_path = run_dir / "metrics.json"
    metrics_path.write_text(json.dumps(doc, indent=2, default=_json_default))
    preds = X_te.copy()
    preds[f"{p.target} (true)"] = y_te
    preds[f"{p.target} (LIFT)"] = lift["pred"]
    if lift["proba"] is not None:
        for i, c in enumerate(classes or []):
            preds[f"P({c})"] = lift["proba"][:, i]
    preds.to_csv(run_dir / "test_predictions.csv", index=False)
    zip_path = export_adapter(est, run_dir / "adapter.zip", table, lift_metrics, run_dir / "export")
    artifacts = {"metrics": metrics_path, "adapter": zip_path, "predictions": run_dir / "test_predictions.csv"}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for key, src in artifacts.items():
            dst = out / Path(src).name
            dst.write_bytes(Path(src).read_bytes())
    store.finish(run_id, "succeeded", metrics=doc, artifacts=artifacts)
    if checkpoint_dir is not None:
        clear_checkpoints(checkpoint_dir)
    return doc


def run_and_record(request: RunRequest, store: RunStore, run_id: str, out: Path | None = None,
                   say: Say = print, on_event: Callable[[dict], None] | None = None,
                   checkpoint_dir: Path | None = None) -> dict[str, Any] | None:
    """``run_experiment`` with the run's final status always recorded, whatever happens."""
    import os

    store.mark_running(run_id, os.getpid())
    try:
        return run_experiment(request, store, run_id, out, say, on_event, checkpoint_dir)
    except TrainingCancelled:  # someone asked it to stop: cancelled, not failed
        store.finish(run_id, "cancelled", error="cancelled by request")
        return None
    except LiftError as exc:
        store.finish(run_id, "failed", error=str(exc))
        raise
    except BaseException as exc:
        store.log(run_id, traceback.format_exc())
        store.finish(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, pd.Series)):
        return value.tolist()
    return str(value)
