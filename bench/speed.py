"""Speed, side by side on the same model and rows: our LIFT training and label scoring against the
plain recipe and LIFT's per-row generation.

- **Training:** ``ours`` (per-batch padding, left-padded with logits only for the answers' tail,
  bf16 autocast where it measured faster, shared LoRA dropout masks on CPU) against ``plain`` (the
  transformers Trainer + peft recipe: every batch padded to the table's longest row, logits at
  every position, float32 on CPU, peft's own dropout). Same LoRA, settings, seed and rows;
  tokens/s counts real tokens only, validation time excluded; peak memory is the process's (CPU)
  or the GPU's.
- **Prediction:** on the model ``ours`` trained, rows/s (over every row of the table) and test
  accuracy of our label scoring (one forward per row up to where the answers part), of scoring
  whole answers (each prompt read once, its cache repeated for the K continuations) and of
  LIFT's way, greedy ``generate`` one row at a time.
- **End to end:** ``python -m lift_core run --data iris --epochs 5`` (train + evaluate + baselines).

Each variant runs in its own process (so peak memory is its own). Writes
``docs/benchmarks/speed.{json,md}`` with the date, machine and command.

    .venv/bin/python bench/speed.py                 # iris, bundled model, default settings
    .venv/bin/python bench/speed.py --quick         # tiny model, 1 epoch: checks the script works
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import commit, machine, recorded_command, save_results  # noqa: E402
from lift_core.config import AUTO_EPOCHS, LiftConfig, TrainSettings  # noqa: E402
from lift_core.estimator import LiftClassifier  # noqa: E402
from lift_core.examples import pad_batch  # noqa: E402
from lift_core.experiment import RunRequest, _parts, load_table  # noqa: E402
from lift_core.predict import score_candidates  # noqa: E402


class PlainCollator:
    """The usual recipe: right padding to the table's longest row, labels (and logits) everywhere."""

    def __init__(self, pad_id: int, width: int) -> None:
        self.pad_id, self.width = pad_id, width
        self.tokens_seen = 0

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [f["input_ids"] for f in features]
        self.tokens_seen += sum(len(s) for s in seqs)
        return pad_batch(seqs, self.pad_id, labels=[f["labels"] for f in features], width=self.width)


class PlainRecipe(LiftClassifier):
    shared_dropout = False  # peft's own dropout, as the plain recipe has it
    gradient_checkpointing = True  # QLoRA's preparation's default, as the plain recipe has it (4-bit only)

    def _collator(self, features: list[dict]) -> PlainCollator:
        return PlainCollator(self.lm_.tokenizer.pad_token_id, max(len(f["input_ids"]) for f in features))


def _peak_bytes(device: str) -> int:
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _two_passes(predict, rows: int) -> tuple[dict, object]:
    """Rows/s of a first pass and of a second over the same rows. The first pays one-off costs (on
    CPU, oneDNN builds a kernel for each new matrix shape); the second is the rate a long table
    sees. Returns the second pass's output."""
    rates = {}
    for key in ("first_pass_rows_per_s", "rows_per_s"):
        t0 = time.perf_counter()
        result = predict()
        rates[key] = rows / (time.perf_counter() - t0)
    return rates, result


def variant(name: str, data: str, model: str, epochs: int, seed: int, quantization: str = "auto",
            generate_rows: int | None = None) -> dict:
    """Train one recipe (and, for ours, time both ways of predicting); runs in its own process.
    ``generate_rows``: per-row generate over only the table's last N rows (the test rows come last),
    where it is slow enough to eat a GPU call's minutes (0.44 s a row in 4-bit on an H200)."""
    table = load_table(RunRequest(data=data, seed=seed))
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = _parts(table)
    p = table.prepared
    train = TrainSettings(epochs=epochs, seed=seed, bf16_cpu=False if name == "plain" else "auto")
    cls = PlainRecipe if name == "plain" else LiftClassifier
    est = cls(LiftConfig(model=model, quantization=quantization, train=train), target=p.target,
              classes=list(p.classes))
    est.fit(X_tr, y_tr, eval_set=(X_val, y_val))
    r = est.train_result_
    train_s = r.seconds - r.eval_seconds
    out = {"variant": name, "device": est.lm_.device, "quantization": est.lm_.quantization, "bf16": est.bf16_,
           "gradient_checkpointing": est.checkpointing_,
           "train_seconds": train_s, "seconds_per_epoch": train_s / epochs, "train_tokens": r.train_tokens,
           "tokens_per_s": r.train_tokens / train_s, "test_accuracy": float(est.score(X_te, y_te))}
    if name == "ours":
        rows = pd.concat([X_tr, X_val, X_te])  # every row of the table: a steadier rate than the test rows alone
        test = slice(len(X_tr) + len(X_val), None)
        out["predict"] = {"rows": len(rows), "test_rows": len(X_te)}
        for way, shortcut in (("scoring", True), ("whole_answer_scoring", False)):
            rates, scores = _two_passes(lambda: score_candidates(
                est.lm_.model, est._prompt_ids(rows), est.candidate_ids_, est.lm_.tokenizer.pad_token_id, est.lm_.device,
                est.config.eval_batch_size, est._bf16(), shortcut=shortcut), len(rows))
            picked = est.classes_[scores.argmax(axis=1)][test]
            out["predict"][way] = {**rates, "accuracy": float(np.mean(picked == y_te))}
        est.config.predict_mode, est.config.eval_batch_size = "generate", 1  # LIFT's per-row generate (greedy)

        gen_rows = rows if generate_rows is None else rows.iloc[-generate_rows:]
        k = min(len(gen_rows), len(X_te))  # the test rows among them: their last k

        def generate() -> np.ndarray:
            est._last = None  # the estimator keeps the last call's scores: make it generate again
            return est.predict(gen_rows)
        rates, generated = _two_passes(generate, len(gen_rows))
        out["predict"]["per_row_generate"] = {
            **rates, "rows": len(gen_rows), "accuracy": float(np.mean(generated[-k:] == np.asarray(y_te)[-k:])),
            "invalid": int(est.invalid_mask_[-k:].sum())}
    out["peak_memory_bytes"] = _peak_bytes(est.lm_.device)
    return out


def run_variant(name: str, data: str, model: str, epochs: int, seed: int, quantization: str = "auto",
                generate_rows: int | None = None) -> dict:
    """``variant`` in a child process of its own, so its peak memory is its own; RuntimeError with
    the child's error output if it fails."""
    cmd = [sys.executable, __file__, "--variant", name, "--data", data, "--model", model, "--epochs", str(epochs),
           "--seed", str(seed), "--quantization", quantization]
    if generate_rows is not None:
        cmd += ["--generate-rows", str(generate_rows)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def end_to_end(data: str, model: str, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "lift_core", "run", "--data", data, "--model", model, "--epochs", str(epochs)]
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, LIFT_HOME=tmp), capture_output=True, text=True)
        wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return {"command": "python -m lift_core run " + " ".join(cmd[4:]), "wall_seconds": wall}


def report(doc: dict) -> str:
    by = {v["variant"]: v for v in doc["training"]}
    plain, ours = by["plain"], by["ours"]
    pred = ours["predict"]
    gib = 1024 ** 3
    return "\n".join([
        "# Speed: training and prediction, side by side",
        "",
        f"- **Measured:** {doc['date']} on {doc['machine']}, code at commit {doc.get('commit', '(not recorded)')}",
        f"- **Command:** `{doc['command']}`",
        f"- **Rows:** {doc['data']} (LIFT's split, seed {doc['seed']}), model `{doc['model']}`, {doc['epochs']} epochs, "
        "default settings otherwise; both recipes train the same LoRA from the same seed.",
        "",
        "## Training",
        "",
        "Both recipes run under the transformers Trainer with the same LoRA; ours differs in how it "
        "batches, in bf16 on CPU (attention kept in fp32, frozen weights stored in bf16: "
        "`lift_core/precision.py`) and in its LoRA dropout on CPU (one mask shared by the adapters "
        "reading the same input, drawn cheaply: `lift_core/lora_dropout.py`).",
        "",
        "| recipe | tokens/s | s per epoch | peak memory | bf16 | test accuracy |",
        "|---|---|---|---|---|---|",
        *[f"| {label} | {v['tokens_per_s']:.0f} | {v['seconds_per_epoch']:.1f} | {v['peak_memory_bytes'] / gib:.2f} GiB | "
          f"{'yes' if v['bf16'] else 'no'} | {v['test_accuracy']:.3f} |"
          for label, v in (("plain: pad to the longest row, all logits, fp32", plain),
                           ("ours: per-batch padding, tail logits, bf16 where measured faster", ours))],
        "",
        f"**Speed-up: {ours['tokens_per_s'] / plain['tokens_per_s']:.2f}×** the plain recipe's tokens/s.",
        "",
        f"## Prediction (the model `ours` trained; rows/s over all {pred['rows']} rows, accuracy on the "
        f"{pred['test_rows']} test rows)",
        "",
        "Each method runs twice over the same rows; the first pass pays one-off costs (on CPU, oneDNN "
        "builds a kernel for each new matrix shape), the second is the rate a long table sees.",
        "",
        "| method | rows/s | rows/s, first pass | test accuracy |",
        "|---|---|---|---|",
        *[f"| {label} | {pred[way]['rows_per_s']:.2f} | {pred[way]['first_pass_rows_per_s']:.2f} | "
          f"{pred[way]['accuracy']:.3f}{note} |"
          for label, way, note in (
              ("LIFT's per-row greedy generate", "per_row_generate",
               f" ({pred['per_row_generate']['invalid']} unreadable)"),
              ("whole-answer scoring (each prompt read once, K continuations)", "whole_answer_scoring", ""),
              ("our label scoring (one forward per row, up to where the answers part)", "scoring", ""))],
        "",
        f"**Speed-up: {pred['scoring']['rows_per_s'] / pred['per_row_generate']['rows_per_s']:.1f}×** the rows/s "
        f"of per-row generate ({pred['scoring']['first_pass_rows_per_s'] / pred['per_row_generate']['first_pass_rows_per_s']:.1f}× "
        "on the first pass).",
        "",
        "## End to end",
        "",
        f"`{doc['end_to_end']['command']}`: **{doc['end_to_end']['wall_seconds']:.0f} s** "
        "(model load, training, evaluation, baselines, adapter export).",
        "",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="iris")
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--epochs", type=int, default=AUTO_EPOCHS)
    ap.add_argument("--e2e-epochs", type=int, default=5, help="epochs of the end-to-end run (the target is 2 min at 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--quick", action="store_true", help="tiny model, 1 epoch, into a temp folder")
    ap.add_argument("--variant", choices=["plain", "ours"], help=argparse.SUPPRESS)  # one child process
    ap.add_argument("--quantization", default="auto", help=argparse.SUPPRESS)  # a child's (bench/gpu.py)
    ap.add_argument("--generate-rows", type=int, help=argparse.SUPPRESS)  # a child's (bench/gpu.py)
    args = ap.parse_args()
    if args.quick:
        args.model, args.epochs, args.e2e_epochs = "tiny", 1, 1
        if args.out == ROOT / "docs" / "benchmarks":
            args.out = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    if args.variant:
        print(json.dumps(variant(args.variant, args.data, args.model, args.epochs, args.seed, args.quantization,
                                args.generate_rows)))
        return 0
    training = []
    for name in ("plain", "ours"):
        try:
            training.append(run_variant(name, args.data, args.model, args.epochs, args.seed))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{name}: {training[-1]['tokens_per_s']:.0f} tokens/s, accuracy {training[-1]['test_accuracy']:.3f}",
              flush=True)
    doc = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), "commit": commit(),
           "command": recorded_command("speed.py", sys.argv[1:]), "data": args.data,
           "model": args.model, "epochs": args.epochs, "seed": args.seed, "training": training,
           "end_to_end": end_to_end(args.data, args.model, args.e2e_epochs)}
    print(f"report: {save_results(args.out, 'speed', doc, report(doc))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
