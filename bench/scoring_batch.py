"""How many rows a label-scoring forward, or a greedy-generation batch, should read: ms a row by
batch size, on tables whose rows differ in length, for each-epoch validation (LoRA unmerged, as
during training) and for prediction (the adapters merged, as after it).

Both read whole prompts, so their batches grow with the rows' length; on long rows a big batch
reads slower than a small one. ``lift_core.predict`` caps a batch at ``TOKENS_PER_BATCH`` prompt
tokens, chosen here: each data set is scored, and continued for GENERATED tokens by greedy
generation (regression's way, and the generate mode's), with fixed batch sizes (the cap lifted)
and with the default (``eval_batch_size`` under the cap). Speed only: the LoRA is fresh, its
weights do not matter, and generation runs its GENERATED tokens on every row. Writes
``docs/benchmarks/scoring-batch.{json,md}`` with the date, machine and command.

    .venv/bin/python bench/scoring_batch.py            # digits, breast cancer, iris; bundled model
    .venv/bin/python bench/scoring_batch.py --quick    # tiny model, few rows: checks the script works
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import commit, machine, recorded_command, save_results  # noqa: E402
from lift_core import predict  # noqa: E402
from lift_core.config import LiftConfig  # noqa: E402
from lift_core.estimator import LiftClassifier  # noqa: E402
from lift_core.examples import Example, encode_answer, training_features  # noqa: E402
from lift_core.experiment import RunRequest, load_table  # noqa: E402
from lift_core.models import load_model  # noqa: E402
from lift_core.precision import for_cpu_prediction, use_bf16  # noqa: E402
from lift_core.training import attach_lora  # noqa: E402

DEFAULT = "default"
GENERATED = 8


def _ms_a_row(model, tok, prompts, candidates, bf16: bool, batch: int | str, way: str) -> tuple[float, int]:
    """Milliseconds a row over all ``prompts`` (after one warm-up batch: oneDNN builds a kernel per
    new shape) and the rows a forward read, for label scoring or greedy generation (``way``)."""
    cap = predict.TOKENS_PER_BATCH
    asked = LiftConfig().eval_batch_size if batch == DEFAULT else batch
    if batch != DEFAULT:
        predict.TOKENS_PER_BATCH = 10**9  # a fixed batch size, whatever the rows' length
    try:
        continuations = 1 if way == "generation" or predict.split_point(candidates) is not None else len(candidates)
        rows = len(predict.length_batches(prompts, asked, continuations)[0])

        def run(some: list) -> None:
            if way == "scoring":
                predict.score_candidates(model, some, candidates, tok.pad_token_id, "cpu", asked, bf16)
            else:  # a two-token end marker no row meets: GENERATED new tokens on every row
                predict.generate_answers(model, tok, some, tok.pad_token_id, "cpu", GENERATED, [-1, -1], asked, bf16)

        run(prompts[:rows])
        t0 = time.perf_counter()
        run(prompts)
        return (time.perf_counter() - t0) / len(prompts) * 1000, rows
    finally:
        predict.TOKENS_PER_BATCH = cap


def measure(data: str, model_ref: str, n_rows: int, batches: list[int]) -> dict:
    table = load_table(RunRequest(data=data, seed=0))
    p = table.prepared
    config = LiftConfig(model=model_ref)
    clf = LiftClassifier(config, target=p.target)
    clf.lm_ = load_model(model_ref, quantization="none")
    X, y = p.frame[p.features], p.frame[p.target]
    cfg, y = clf._start_fit(X, y)
    prompts = clf._prompt_ids(X.iloc[:n_rows])
    tok = clf.lm_.tokenizer
    model = attach_lora(clf.lm_.model, cfg.lora, quantized=False)
    examples = [Example(q, encode_answer(tok, clf.serializer_.answer(v), clf.end_))
                for q, v in zip(prompts, y.iloc[:n_rows])]
    features = training_features(examples)
    bf16 = use_bf16(model, clf._collator(features)(features[:cfg.train.batch_size]), cfg.train, "cpu", cfg.model)
    results = []
    for state in ("validation", "prediction"):
        if state == "prediction":
            for_cpu_prediction(model, bf16, "cpu")
        for batch in [*batches, DEFAULT]:
            for way in ("scoring", "generation"):
                ms, rows = _ms_a_row(model, tok, prompts, clf.candidate_ids_, bf16, batch, way)
                results.append({"state": state, "way": way, "batch": batch, "rows_a_forward": rows, "ms_a_row": ms})
                print(f"{data} {state} {way} batch {batch}: {rows} rows a forward, {ms:.0f} ms a row", flush=True)
    lengths = [len(q) for q in prompts]
    return {"data": data, "rows": len(prompts), "mean_tokens": sum(lengths) / len(lengths),
            "longest": max(lengths), "bf16": bf16, "results": results}


def report(doc: dict) -> str:
    lines = [
        "# Label scoring and generation: rows a batch against the rows' length",
        "",
        f"- **Measured:** {doc['date']} on {doc['machine']}, code at commit {doc['commit']}",
        f"- **Command:** `{doc['command']}`",
        f"- **Model:** `{doc['model']}` with a fresh LoRA (speed only); the first rows of each table, "
        "read twice, the first pass a warm-up of one batch.",
        f"- **Default:** `eval_batch_size` {doc['eval_batch_size']} sequences, capped at "
        f"{doc['tokens_per_batch']} prompt tokens a forward (`lift_core/predict.py`).",
        f"- **Generation:** greedy, {doc['generated']} new tokens on every row (an end marker no row meets).",
        "",
        "Validation reads the rows each epoch with the LoRA adapters unmerged, as training left them;",
        "prediction reads them once training is done, the adapters merged into the weights.",
        "",
    ]
    for d in doc["datasets"]:
        lines += [f"## {d['data']}: {d['rows']} rows, {d['mean_tokens']:.0f} prompt tokens on average "
                  f"(longest {d['longest']}), {'bf16' if d['bf16'] else 'float32'}", "",
                  "| batch (sequences asked) | rows a forward | scoring: validation, ms a row | prediction "
                  "| generation: validation, ms a row | prediction |",
                  "|---|---|---|---|---|---|"]
        by = {(r["state"], r["way"], str(r["batch"])): r for r in d["results"]}
        for batch in dict.fromkeys(str(r["batch"]) for r in d["results"]):
            cells = [by[(state, way, batch)] for way in ("scoring", "generation") for state in ("validation", "prediction")]
            lines.append(f"| {batch} | {cells[0]['rows_a_forward']} | "
                         + " | ".join(f"{c['ms_a_row']:.0f}" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer", "iris"])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--rows", type=int, default=48, help="rows of each table scored")
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--quick", action="store_true", help="tiny model, iris, 8 rows, into a temp folder")
    args = ap.parse_args()
    if args.quick:
        args.datasets, args.model, args.rows, args.batches = ["iris"], "tiny", 8, [2, 4]
        if args.out == ROOT / "docs" / "benchmarks":
            args.out = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    doc = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), "commit": commit(),
           "command": recorded_command("scoring_batch.py", sys.argv[1:]), "model": args.model,
           "eval_batch_size": LiftConfig().eval_batch_size, "tokens_per_batch": predict.TOKENS_PER_BATCH,
           "generated": GENERATED,
           "datasets": [measure(d, args.model, args.rows, args.batches) for d in args.datasets]}
    print(f"report: {save_results(args.out, 'scoring-batch', doc, report(doc))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
