"""Measure what a no-code user gets with the DEFAULT settings on iris: accuracy and wall time.

Runs `python -m lift_core run --data iris --model bundled --seed S` as a user would (a fresh
process each, model conversion cached), for each seed, and writes the raw metrics and a markdown
table with the date, machine and command to docs/benchmarks/.

    .venv/bin/python bench/iris_defaults.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "lift_core", "run", "--data", "iris", "--model", args.model,
                   "--seed", str(seed), "--out", tmp]
            env = dict(os.environ, LIFT_HOME=str(Path(tmp) / "ws"))
            t0 = time.time()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.time() - t0
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            doc = json.loads((Path(tmp) / "metrics.json").read_text())
        lift = doc["models"]["lift"]
        rows.append({"seed": seed, "wall_seconds": wall, "lift": lift, "history": doc["history"],
                     "baselines": {k: v.get("accuracy") for k, v in doc["models"].items() if k != "lift"}})
        print(f"seed {seed}: LIFT test accuracy {lift['accuracy']:.4f}, best epoch {lift['best_epoch']}, "
              f"{wall:.0f} s end to end", flush=True)
    accs = [r["lift"]["accuracy"] for r in rows]
    mean = sum(accs) / len(accs)
    std = (sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python bench/iris_defaults.py --seeds {' '.join(map(str, args.seeds))} --model {args.model}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "iris-defaults.json").write_text(json.dumps(
        {"date": stamp, "machine": machine(), "command": command, "runs": rows,
         "accuracy_mean": mean, "accuracy_std": std}, indent=2))
    lines = [f"# Iris with the default settings ({args.model} model)", "",
             f"- date: {stamp}", f"- machine: {machine()}", f"- command: `{command}`",
             f"- LIFT test accuracy over seeds: **{mean:.4f} ± {std:.4f}** (population std)", "",
             "| seed | LIFT accuracy | best epoch | train s | end-to-end s | logreg | svm | rf |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r["baselines"]
        lines.append(f"| {r['seed']} | {r['lift']['accuracy']:.4f} | {r['lift']['best_epoch']} | "
                     f"{r['lift']['train_seconds']:.0f} | {r['wall_seconds']:.0f} | {b.get('logreg', float('nan')):.4f} | "
                     f"{b.get('svm', float('nan')):.4f} | {b.get('rf', float('nan')):.4f} |")
    lines += ["", "Validation accuracy per epoch (the kept epoch is the best one):", ""]
    for r in rows:
        hist = ", ".join(f"{h['epoch']}: {h['val_accuracy']:.3f}" for h in r["history"])
        lines.append(f"- seed {r['seed']}: {hist}")
    (args.out / "iris-defaults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
