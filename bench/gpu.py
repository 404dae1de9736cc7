"""Speed on a GPU: 4-bit QLoRA against bf16 LoRA and our recipe against the plain Trainer + peft
one, on the bundled model's architecture (SmolLM2-135M) and a 0.5B one (Qwen2.5-0.5B).

The models have random weights and the real architecture: exactly as fast as trained ones, and
nothing to download (the GPU machine reaches no hub). Each architecture becomes a model folder
(config, seeded random weights, a tokenizer) that the ordinary model path loads as a local
folder, so every run goes through the loading, QLoRA preparation, training and scoring a user's
run does. Each (architecture, precision, recipe) is one ``bench/speed.py`` child process, so its
peak GPU memory is its own. Test accuracy is not reported: random weights learn nothing worth
comparing, and per-row generate may run on to its token limit where a trained model would stop at
the end marker (the report gives how many test answers it could not read).

Here, first: save the bundled model's tokenizer, which travels (the bundled model itself cannot be
converted there: no gguf), and fetch the wheels that machine lacks (bitsandbytes) or has at other
versions (transformers 5.17 and its own peft; this code is checked against the pinned ones) into
the git-ignored ``.whl/``: 55 MB of the 64 MiB a call may carry::

    .venv/bin/python bench/gpu.py --save-tokenizer .gpu/tokenizer
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_24_x86_64 --platform any -d .whl \
        bitsandbytes==0.50.2 transformers==5.23.0 peft==0.21.2

On the GPU machine, carrying ``.whl`` and ``.gpu``, ``bench/gpu_call.sh`` installs the wheels and
runs this script (what it measured on 2026-12-04: docs/benchmarks/gpu-15473d6/). A call ends at
10 minutes and all variants take longer, so results are saved after every variant and
``--resume`` carries an earlier call's gpu.json on, measuring only what it lacks::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 bench/gpu.py --tokenizer .gpu/tokenizer --generate-rows 30 --out $OUT \
        [--resume docs/benchmarks/gpu/gpu.json]

    .venv/bin/python bench/gpu.py --quick   # CPU, a tiny Llama, full precision: checks the script
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import commit, machine, recorded_command, save_results  # noqa: E402
from bench.speed import run_variant  # noqa: E402
from lift_core.config import AUTO_EPOCHS  # noqa: E402
from lift_core.models import BUNDLED, TINY, cuda_available, load_tokenizer  # noqa: E402
from lift_core.resources import BUNDLED_CONFIG  # noqa: E402

ARCHITECTURES = {
    "smollm2-135m": BUNDLED_CONFIG,
    # Qwen2.5-0.5B's published config.
    "qwen2.5-0.5b": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                     "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                     "tie_word_embeddings": True, "use_sliding_window": False},
    # --quick only: the smallest Llama that still runs every code path.
    "tiny-llama": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 50257,
                   "max_position_embeddings": 2048, "tie_word_embeddings": True},
}


def model_folder(arch: str, tokenizer, folder: Path, seed: int = 0) -> Path:
    """A loadable model folder: the architecture's config, seeded random weights and ``tokenizer``.
    The vocabulary is the architecture's own (the output layer's cost), never below the tokenizer's."""
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(ARCHITECTURES[arch])
    spec["vocab_size"] = max(spec["vocab_size"], len(tokenizer))
    config = AutoConfig.for_model(**spec, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                  bos_token_id=tokenizer.bos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _measured(doc: dict, run: dict) -> tuple[str, str, str, str, str]:
    """Where a run was measured: its own record, else (runs from before resuming existed) the document's."""
    m = run.get("measured", doc)
    return m["date"], m["machine"], m["device"], m.get("commit", "(not recorded)"), m["command"]


def resumed(path: Path, settings: dict) -> dict:
    """The runs of an earlier gpu.json to carry on from; refused (ValueError) if its settings differ,
    since tokens/s over other rows or epochs would not compare."""
    doc = json.loads(path.read_text())
    theirs = {k: doc.get(k) for k in settings}
    if theirs != settings:
        raise ValueError(f"{path} was measured with {theirs}, this call has {settings}: "
                         "resume with the same settings, or measure afresh without --resume")
    for r in doc["runs"]:  # each run keeps where it was measured; the document's fields become this call's
        r.setdefault("measured", {k: doc.get(k, "(not recorded)") for k in ("date", "machine", "device", "commit",
                                                                            "command")})
    return doc


def report(doc: dict) -> str:
    gib = 1024 ** 3
    calls = list(dict.fromkeys(_measured(doc, r) for r in doc["runs"])) or [_measured(doc, {})]
    lines = ["# Speed on a GPU: QLoRA against bf16 LoRA, ours against the plain recipe", "",
             *[f"- **Measured:** {date} on {where}, device `{device}`, code at commit {at}; **command:** `{command}`"
               for date, where, device, at, command in calls],
             f"- **Rows:** {doc['data']} (LIFT's split, seed {doc['seed']}), {doc['epochs']} epochs, default settings "
             "otherwise; random weights with each architecture's real shapes (as fast as trained weights), so "
             "accuracy is not reported.", "",
             "## Training", "",
             "The plain recipe's 4-bit runs recompute activations in the backward pass (gradient checkpointing, "
             "QLoRA's preparation's default); ours do only where memory needs it (`needs_checkpointing` in "
             "lift_core/training.py); bf16 runs never do. Runs measured before that choice (no record) checkpointed "
             "in 4-bit.", "",
             "| architecture | precision | recipe | checkpointing | tokens/s | s per epoch | peak memory |",
             "|---|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        t = r["result"]
        ckpt = t.get("gradient_checkpointing", t["quantization"] != "none")
        lines.append(f"| {r['arch']} | {r['quantization']} | {t['variant']} | {'yes' if ckpt else 'no'} | "
                     f"{t['tokens_per_s']:.0f} | {t['seconds_per_epoch']:.1f} | {t['peak_memory_bytes'] / gib:.2f} GiB |")
    lines += ["", "## Prediction (the model `ours` trained; scoring reads every row of the table, generate every row or "
              "the table's last rows, test rows among them)", "",
              "| architecture | precision | our scoring, rows/s (first pass) | per-row generate, rows/s (first pass), rows | "
              "ratio | generate: unreadable test answers |", "|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        pred = r["result"].get("predict")
        if not pred:
            continue
        s, g = pred["scoring"], pred["per_row_generate"]
        generated = g.get("rows", pred["rows"])  # runs from before --generate-rows generated every row
        lines.append(f"| {r['arch']} | {r['quantization']} | {s['rows_per_s']:.1f} ({s['first_pass_rows_per_s']:.1f}) | "
                     f"{g['rows_per_s']:.2f} ({g['first_pass_rows_per_s']:.2f}), {generated} rows | "
                     f"{s['rows_per_s'] / g['rows_per_s']:.1f}× | {g['invalid']} of {min(generated, pred['test_rows'])} |")
    if doc["failed"]:
        lines += ["", "## Failed", ""] + [f"- {f['arch']} {f['quantization']} {f['recipe']}: {f['error']}"
                                         for f in doc["failed"]]
    return "\n".join(lines + [""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", default=["smollm2-135m", "qwen2.5-0.5b"], choices=list(ARCHITECTURES))
    ap.add_argument("--precisions", nargs="+", default=["4bit", "none"], choices=["4bit", "none"],
                    help="4bit: QLoRA (nf4); none: LoRA on the model in bf16")
    ap.add_argument("--tokenizer", default=BUNDLED, help="'bundled', 'tiny' or a folder saved by --save-tokenizer")
    ap.add_argument("--save-tokenizer", type=Path, help="save the tokenizer to this folder and stop")
    ap.add_argument("--save-model", type=Path, help="write the first of --archs as a model folder here and stop "
                    "(for an end-to-end `python -m lift_core run --model FOLDER` on the GPU)")
    ap.add_argument("--data", default="iris")
    ap.add_argument("--epochs", type=int, default=AUTO_EPOCHS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--generate-rows", type=int,
                    help="per-row generate over only the table's last N rows (default: every row)")
    ap.add_argument("--resume", type=Path, help="an earlier gpu.json with the same settings: keep its runs, "
                    "measure only the (architecture, precision, recipe) it lacks")
    ap.add_argument("--quick", action="store_true", help="CPU, tiny Llama, full precision, 1 epoch, into a temp folder")
    args = ap.parse_args()
    if args.quick:
        args.archs, args.precisions, args.tokenizer, args.epochs = ["tiny-llama"], ["none"], TINY, 1
        if args.out == ROOT / "docs" / "benchmarks":
            args.out = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    if args.save_tokenizer:
        load_tokenizer(args.tokenizer).save_pretrained(args.save_tokenizer)
        print(f"tokenizer saved in {args.save_tokenizer}")
        return 0
    if args.save_model:
        folder = model_folder(args.archs[0], load_tokenizer(args.tokenizer), args.save_model, args.seed)
        print(f"model folder written in {folder}")
        return 0
    if "4bit" in args.precisions and not cuda_available():  # refused before any model or tokenizer loads
        print("4-bit QLoRA needs a CUDA GPU and there is none here; run on a GPU machine, "
              "or pass --precisions none (or --quick)", file=sys.stderr)
        return 2
    tokenizer = load_tokenizer(args.tokenizer)
    device = torch.cuda.get_device_name(0) if cuda_available() else "cpu"
    settings = {"data": args.data, "epochs": args.epochs, "seed": args.seed}
    here = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), "device": device,
            # The GPU machine gets the working tree without .git: the caller passes the commit in LIFT_COMMIT.
            "commit": os.environ.get("LIFT_COMMIT") or commit(),
            "command": recorded_command("gpu.py", sys.argv[1:])}
    try:
        doc = resumed(args.resume, settings) if args.resume else {"runs": []}
    except (OSError, ValueError) as exc:
        print(f"error: --resume: {exc}", file=sys.stderr)
        return 2
    doc.update(here, **settings, failed=[])
    done = {(r["arch"], r["quantization"], r["result"]["variant"]) for r in doc["runs"]}
    with tempfile.TemporaryDirectory(prefix="lift-gpu-models-") as tmp:
        for arch in args.archs:
            todo = [(q, name) for q in args.precisions for name in ("plain", "ours") if (arch, q, name) not in done]
            if not todo:
                continue
            folder = model_folder(arch, tokenizer, Path(tmp) / arch, args.seed)
            for quantization, name in todo:
                try:
                    result = run_variant(name, args.data, str(folder), args.epochs, args.seed, quantization,
                                         args.generate_rows)
                except RuntimeError as exc:
                    print(f"{arch} {quantization} {name} failed:\n{exc}", file=sys.stderr)
                    lines = str(exc).strip().splitlines() or ["no message"]
                    doc["failed"].append({"arch": arch, "quantization": quantization, "recipe": name,
                                          "error": lines[-1][:300]})
                else:
                    doc["runs"].append({"arch": arch, "quantization": quantization, "result": result,
                                        "measured": here})
                    print(f"{arch} {quantization} {name}: {result['tokens_per_s']:.0f} tokens/s", flush=True)
                # Saved after every variant: a call cut off by the GPU machine's time limit keeps what it measured.
                save_results(args.out, "gpu", doc, report(doc))
    save_results(args.out, "gpu", doc, report(doc))  # also where a resumed call had nothing left to measure
    print(report(doc))
    return 1 if doc["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
