"""``python -m lift_core``: the same core the app uses, from a terminal.

Bad input exits with status 2 and one line ``error: <what is wrong and how to fix it>``; only a
bug in LIFT Studio itself prints a traceback (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from lift_core.config import AUTO, METHODS
from lift_core.errors import LiftError


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error contract instead of a usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def _auto_or(kind: type, what: str, example: str) -> Callable[[str], float | int | str]:
    """An argparse type for settings that take 'auto' or a value (the learning rate, the epochs)."""
    def parse(text: str) -> float | int | str:
        if text == AUTO:
            return AUTO
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} or 'auto'; write e.g. {example}") from None
    return parse


_learning_rate = _auto_or(float, "a number", "5e-4")
_epochs = _auto_or(int, "a whole number", "20")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m lift_core", description="LIFT Studio: fine-tune a language model on a table.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("datasets", help="list the built-in data sets")

    r = sub.add_parser("run", help="fine-tune LIFT, evaluate it and every baseline on the same split")
    r.add_argument("--data", required=True, help="a built-in data set name or a table file (csv, tsv, xlsx, parquet, jsonl)")
    r.add_argument("--target", help="the column to predict (default: the data set's own, or a file's last column)")
    r.add_argument("--task", choices=["classification", "regression"], help="override the inferred task")
    r.add_argument("--features", help="comma-separated feature columns (default: all but the target)")
    r.add_argument("--missing", choices=["word", "drop"], default="word",
                   help="missing feature values: written as the word 'missing' (default) or their rows dropped")
    r.add_argument("--method", default="lift", choices=list(METHODS),
                   help="lift (LoRA fine-tuning, default; classification and regression), or for classification "
                        "with a frozen model: ltuning-prefix, ltuning-prompt (L-Tuning), prefix, prompt (plain tuning)")
    r.add_argument("--virtual-tokens", type=int, help="prefix/prompt length for the non-LIFT methods (default 8)")
    r.add_argument("--model", default="bundled", help="bundled | tiny | a hub id | a local model folder")
    r.add_argument("--template", help="lift_names (default) | lift | text | list | a custom text with {column} placeholders")
    r.add_argument("--question", help="the question that ends every prompt")
    r.add_argument("--precision", type=int, help="decimals for real-valued features (default: automatic, at most 4 decimals as "
                   "in LIFT's code, at least 4 significant digits)")
    r.add_argument("--verbalizer", help='JSON object mapping class values to answer texts, e.g. \'{"0": "no", "1": "yes"}\'')
    r.add_argument("--epochs", type=_epochs, help="epochs, or 'auto' (default: 8, or about 100 optimizer steps on "
                   "a small table)")
    r.add_argument("--lr", type=_learning_rate, help="learning rate, or 'auto' (default: 2e-3 up to 32 steps an epoch, "
                   "falling as 1/sqrt(steps an epoch) beyond)")
    r.add_argument("--batch-size", type=int)
    r.add_argument("--lora-r", type=int)
    r.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement (0 = off)")
    r.add_argument("--quantization", choices=["auto", "4bit", "8bit", "none"], help="auto = 4-bit on CUDA, none on CPU")
    r.add_argument("--predict-mode", choices=["score", "generate"], help="classification: score candidates (default) or generate and parse")
    r.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own Python code to run")
    r.add_argument("--no-baselines", action="store_true", help="skip the classic ML baselines")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--train-rows", type=int, help="use only this many of the training rows (stratified; for "
                                                  "learning curves); validation and test rows are unchanged")
    r.add_argument("--out", type=Path, help="also copy metrics.json, adapter.zip and test predictions here")
    r.add_argument("--checkpoint-dir", type=Path, help="keep training checkpoints here (each epoch and every 10 "
                   "minutes); the same command run again after a crash or a kill carries on from the last one. "
                   "Removed when the run finishes. LIFT runs only (default: in the run's folder, carried on "
                   "with `carry-on RUN_ID`)")

    c = sub.add_parser("carry-on", help="carry a failed or cancelled LIFT run on from its last checkpoint, here")
    c.add_argument("run_id")
    c.add_argument("--out", type=Path, help="also copy metrics.json, adapter.zip and test predictions here")

    pr = sub.add_parser("predict", help="predict new rows with an adapter zip")
    pr.add_argument("--adapter", required=True, type=Path)
    pr.add_argument("--data", required=True, type=Path)
    pr.add_argument("--out", required=True, type=Path)
    pr.add_argument("--trust-remote-code", action="store_true",
                    help="allow the adapter's base model's own Python code to run (hub models that need it)")

    sub.add_parser("runs", help="list the runs in the workspace")
    w = sub.add_parser("worker", help="(internal) run a queued run; the app starts these")
    w.add_argument("run_id")
    return p


def _request(args: argparse.Namespace):
    from lift_core.config import LiftConfig
    from lift_core.experiment import RunRequest

    cfg = LiftConfig(method=args.method, model=args.model)
    if args.virtual_tokens is not None:
        cfg.pair.virtual_tokens = args.virtual_tokens
    if args.quantization:
        cfg.quantization = args.quantization
    if args.predict_mode:
        cfg.predict_mode = args.predict_mode
    cfg.trust_remote_code = args.trust_remote_code
    prompt = cfg.prompt.to_dict()
    if args.template:
        prompt["template"] = args.template
    if args.question:
        prompt["question"] = args.question
    if args.precision is not None:
        prompt["precision"] = args.precision
    if args.verbalizer:
        try:
            verbalizer = json.loads(args.verbalizer)
        except json.JSONDecodeError as exc:
            raise LiftError(f"--verbalizer is not valid JSON ({exc.msg}); write it like '{{\"0\": \"no\"}}'") from exc
        if not isinstance(verbalizer, dict):
            raise LiftError("--verbalizer must be a JSON object mapping class values to answer texts")
        prompt["verbalizer"] = {str(k): str(v) for k, v in verbalizer.items()}
    cfg = LiftConfig.from_dict({**cfg.to_dict(), "prompt": prompt})
    for attr, value in (("epochs", args.epochs), ("learning_rate", args.lr), ("batch_size", args.batch_size),
                        ("early_stopping_patience", args.patience)):
        if value is not None:
            setattr(cfg.train, attr, value)
    cfg.train.seed = args.seed
    if args.lora_r is not None:
        cfg.lora.r, cfg.lora.alpha = args.lora_r, 2 * args.lora_r
    cfg.validate()
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    return RunRequest(data=args.data, target=args.target, task=args.task, features=features,
                      missing=args.missing, seed=args.seed, baselines=not args.no_baselines, lift=cfg,
                      train_rows=args.train_rows)


class _Bar:
    """A tqdm progress bar fed by training events."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        if event["kind"] == "train":
            if self.bar is None:
                self.bar = tqdm(total=event["total_steps"], initial=event["step"] - 1,  # a carried-on run starts late
                                desc="training", unit="step", file=sys.stderr)
            self.bar.n = event["step"]
            loss = event.get("loss")
            self.bar.set_postfix(epoch=f"{event['epoch']:.1f}", loss=f"{loss:.3f}" if loss is not None else "-")
            self.bar.refresh()
        elif event["kind"] == "stage":
            if self.bar is None:  # carried on from its last step: no training left, only what follows it
                self.bar = tqdm(desc="training done", bar_format="{desc} {postfix}", file=sys.stderr)
            if event["stage"] == "baselines":
                self.bar.set_postfix_str(f"fitting {event['baseline']} ({event['done'] + 1}/{event['total']})")
            else:
                self.bar.set_postfix_str(f"{event['stage']}: {event['done']}/{event['total']} rows")
        elif event["kind"] == "eval" and self.bar is not None:
            shown = {k: round(v, 4) for k, v in event.items() if k.startswith("val_")}
            self.bar.write(f"epoch {event['epoch']}: {shown}{'  (best so far)' if event.get('improved') else ''}")

    def say(self, line: str) -> None:
        """A log line above the bar, not written into it."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def results_table(doc: dict) -> str:
    from lift_core.baselines import BASELINE_LABELS, describe_settings
    from lift_core.config import METHOD_LABELS

    task = doc["task"]
    cols = ["accuracy", "macro_f1", "roc_auc", "log_loss"] if task == "classification" else ["rmse", "mae", "r2", "rae", "rae_filtered"]
    cols.append("invalid_rate")
    lines = [f"{'model':<24}" + "".join(f"{c:>13}" for c in cols)]
    for name, m in doc["models"].items():
        label = METHOD_LABELS[doc.get("method", "lift")] if name == "lift" else BASELINE_LABELS.get(name, name)
        if "error" in m or "skipped" in m:
            lines.append(f"{label:<24}  {'error: ' + m['error'] if 'error' in m else 'skipped: ' + m['skipped']}")
            continue
        cells = "".join(f"{m[c]:>13.4f}" if isinstance(m.get(c), (int, float)) and m.get(c) is not None else f"{'-':>13}" for c in cols)
        settings = describe_settings(m.get("params") or {})
        lines.append(f"{label:<24}{cells}" + (f"  ({settings})" if settings else ""))
    return "\n".join(lines)


def _cmd_datasets() -> None:
    from lift_core.builtin import BUILTIN

    for name, description in BUILTIN.items():
        print(f"{name:<16} {description}")


def _cmd_run(args: argparse.Namespace) -> int:
    from lift_core.experiment import check_request, open_checkpoints
    from lift_core.jobs import checkpoint_folder, record_here
    from lift_core.store import RunStore

    request = _request(args)
    _no_files(("--out", args.out), ("--checkpoint-dir", args.checkpoint_dir))
    check_request(request)  # bad input fails here, before a run is recorded or a model loaded
    if args.checkpoint_dir is not None:
        open_checkpoints(request, args.checkpoint_dir)
    store = RunStore()
    run_id = record_here(request, store)
    return _train_here(request, store, run_id, args.out,
                       args.checkpoint_dir or checkpoint_folder(store, run_id, request))


def _cmd_carry_on(args: argparse.Namespace) -> int:
    from lift_core.jobs import checkpoint_folder, reopen
    from lift_core.store import RunStore

    _no_files(("--out", args.out))
    store = RunStore()
    request = reopen(args.run_id, store, claim_pid=os.getpid())
    return _train_here(request, store, args.run_id, args.out, checkpoint_folder(store, args.run_id, request))


def _no_files(*flags: tuple[str, Path | None]) -> None:
    """Output folders checked before any training: a path that cannot become a folder fails
    there, after the run's work is done, otherwise."""
    for flag, folder in flags:
        if folder is None:
            continue
        if folder.exists() and not folder.is_dir():
            raise LiftError(f"{flag} {folder} is a file; give a folder (it is created if missing)")
        _creatable(flag, folder)


def _creatable(flag: str, path: Path) -> None:
    """``path`` can be made: its nearest existing parent is a folder this process may write in."""
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if path.absolute() != parent and not parent.is_dir():
        raise LiftError(f"{flag} {path}: {parent} is a file, so nothing can be made inside it; give another path")
    if not os.access(parent if parent.is_dir() else parent.parent, os.W_OK):
        raise LiftError(f"{flag} {path}: {parent} is not writable by you; give another path")


def _train_here(request, store, run_id: str, out: Path | None, checkpoint_dir: Path | None) -> int:
    """Train a recorded run in this process with a progress bar, then print its results table."""
    from lift_core.experiment import run_and_record
    from lift_core.progress import more_epochs_advice

    bar = _Bar()
    try:
        with _ctrl_c_stops(store, run_id):
            doc = run_and_record(request, store, run_id, out=out, say=bar.say, on_event=bar,
                                 checkpoint_dir=checkpoint_dir)
    finally:
        bar.close()
    if doc is None:
        print(_stopped_message(request, store, run_id, checkpoint_dir), file=sys.stderr)
        return 3
    print(results_table(doc))
    advice = more_epochs_advice(doc)
    if advice:
        print(f"\nnote: {advice}")
    print(f"\nrun {run_id}: files in {store.run_dir(run_id)}" + (f" and {out}" if out else ""))
    return 0


@contextmanager
def _ctrl_c_stops(store, run_id: str) -> Iterator[None]:
    """The first Ctrl-C stops the run after the training step in progress, which a LIFT run keeps
    to carry on from (the exit message says what was kept), or once training is over after the
    batch of test predictions or the baseline in progress; a second one quits at once."""
    def stop(signum, frame) -> None:
        store.request_cancel(run_id)
        print("\nstopping after the training step, prediction batch or baseline in progress; "
              "Ctrl-C again to quit at once", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stopped_message(request, store, run_id: str, checkpoint_dir: Path | None) -> str:
    from lift_core.jobs import checkpoint_folder
    from lift_core.training import checkpoint_step, latest_checkpoint

    kept = None if checkpoint_dir is None else latest_checkpoint(checkpoint_dir)
    if kept is None:
        return f"run {run_id} was stopped"
    how = (f"python -m lift_core carry-on {run_id}" if checkpoint_dir == checkpoint_folder(store, run_id, request)
           else "the same command again")
    return f"run {run_id} was stopped; its checkpoint at step {checkpoint_step(kept)} is kept: carry it on with {how}"


def _cmd_predict(args: argparse.Namespace) -> int:
    from lift_core.bundle import read_bundle, read_manifest
    from lift_core.data import read_table
    from lift_core.estimator import check_features, load_estimator, predictions_table

    if args.out.is_dir():
        raise LiftError(f"--out {args.out} is a folder; give a file name such as {args.out / 'predictions.csv'}")
    _creatable("--out", args.out)  # before the model loads and predicts, not after
    frame = read_table(args.data)
    if not args.adapter.exists():
        raise LiftError(f"no such adapter file: {args.adapter}; give the adapter.zip a run wrote")
    check_features(read_manifest(args.adapter).get("features", []), frame, str(args.data))
    with tempfile.TemporaryDirectory(prefix="lift-adapter-") as tmp:
        read_bundle(args.adapter, Path(tmp))
        est = load_estimator(Path(tmp) / "adapter", trust_remote_code=args.trust_remote_code)
        out = predictions_table(est, frame)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"wrote {len(out)} predictions to {args.out}", file=sys.stderr)
    return 0


def _cmd_runs() -> None:
    from lift_core.store import RunStore

    for run in RunStore().list_runs():
        print(f"{run['id']}  {run['status']:<10} {run.get('dataset') or '-':<16} {run.get('model') or '-'}")


def _quiet_libraries() -> None:
    """Keep stderr for our progress and our one-line errors, not for libraries' notices."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    try:
        if args.command == "datasets":
            _cmd_datasets()
            return 0
        if args.command == "runs":
            _cmd_runs()
            return 0
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "carry-on":
            return _cmd_carry_on(args)
        if args.command == "predict":
            return _cmd_predict(args)
        if args.command == "worker":
            from lift_core.jobs import run_worker

            return run_worker(args.run_id)
    except LiftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 1
