"""LIFT against L-Tuning and plain prefix/prompt tuning: accuracy, training time, trained parameters.

For every data set × method × seed (LIFT's protocol: its split per seed, mean ± std over seeds),
runs ``python -m lift_core run --method M`` as a user would — a fresh process each — and appends
the result to the raw JSON as soon as it is in, so an interrupted benchmark resumes where it
stopped (cells already measured with the same settings are skipped). The markdown report is
rewritten from the JSON after every cell, with the date, machine and command.

    .venv/bin/python bench/methods.py                   # iris, wine, breast_cancer; 5 methods; seeds 0-2
    .venv/bin/python bench/methods.py --quick           # tiny model, 1 epoch: checks the script works
    .venv/bin/python bench/methods.py --rebaseline      # baselines of older cells, measured again
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import (DEFAULT_OUT, Cells, add_pause_option, baseline_lines, baselines_of, machines,  # noqa: E402
                         paused, quick_out, rebaseline_stored, recorded_command, run_cli)
from lift_core.baselines import BASELINE_LABELS  # noqa: E402
from lift_core.config import METHOD_LABELS, METHODS  # noqa: E402
from lift_core.experiment import RunRequest  # noqa: E402

DATASETS = ["iris", "wine", "breast_cancer"]
# About the same number of optimizer steps per data set (batch 4): iris 96 rows × 8 epochs = 192,
# wine 113 × 8 = 226, breast cancer 364 × 3 = 273. Eight epochs of breast cancer's 330-token rows
# would take about an hour a run on a 2-core CPU.
EPOCHS = {"breast_cancer": 3}
PAIRS = [("ltuning-prefix", "prefix"), ("ltuning-prompt", "prompt")]  # L-Tuning vs the plain method it improves on


def cell_request(cell: dict) -> RunRequest:
    """The data set and split a cell's run used (its baselines are measured again on it)."""
    return RunRequest(data=cell["data"], seed=cell["seed"])


def run_cell(data: str, method: str, seed: int, model: str, extra: list[str]) -> dict:
    doc, wall = run_cli(["--data", data, "--method", method, "--model", model, "--seed", str(seed), *extra])
    lm = doc["models"]["lift"]
    return {"data": data, "method": method, "seed": seed, "accuracy": lm["accuracy"],
            "train_seconds": lm["train_seconds"], "wall_seconds": wall,
            "trainable_parameters": lm["trainable_parameters"], "best_epoch": lm["best_epoch"],
            "tokens_per_s": lm.get("tokens_per_s"), "n_train": doc["n_train"], "n_test": doc["n_test"],
            **baselines_of(doc, "accuracy")}


def _stats(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))  # population std, as LIFT reports it


def report(doc: dict) -> str:
    cells = doc["cells"]
    seeds = doc["settings"]["seeds"]
    lines = [
        "# LIFT vs L-Tuning vs plain prefix/prompt tuning",
        "",
        f"- **Measured:** cells from {min(c['date'] for c in cells)[:10]} to {max(c['date'] for c in cells)[:10]} "
        f"(each cell's time in the JSON) on {machines(doc['cells'])}",
        f"- **Command:** `{doc['command']}`",
        f"- **Settings:** model `{doc['settings']['model']}`, "
        f"extra arguments `{' '.join(doc['settings']['extra']) or '(none: every default)'}`, "
        f"epochs per data set {doc['settings'].get('epochs') or '(the default for all)'} "
        f"(about the same number of optimizer steps for each; the default, automatic, is 8 on each of these "
        f"tables), seeds {seeds}; "
        "LIFT's split per seed; test accuracy mean ± population std over the seeds (n = seeds measured).",
        "- **Train s:** mean wall time of training, per-epoch validation included. "
        "**Trained:** parameters the method trains (the base model's are frozen or LoRA-wrapped).",
        *baseline_lines(cells, "methods.py"),
        "",
    ]
    for data in doc["settings"]["datasets"]:
        rows = [c for c in cells if c["data"] == data]
        if not rows:
            continue
        r0 = rows[0]
        code = ", ".join(sorted({f"commit {c['commit']}" if c.get("commit") else "not recorded (measured before "
                                 "2fc9e85, which began recording it)" for c in rows}))
        lines += [f"## {data} ({r0['n_train']} training rows, {r0['n_test']} test rows)", "",
                  f"Code: {code}. Its times compare within this table, not across tables measured "
                  "at other commits.", "",
                  "| method | accuracy | n | train s | trained parameters |", "|---|---|---|---|---|"]
        for method in doc["settings"]["methods"]:
            got = [c for c in rows if c["method"] == method]
            if not got:
                lines.append(f"| {METHOD_LABELS[method]} | not yet measured | 0 | | |")
                continue
            mean, std = _stats([c["accuracy"] for c in got])
            lines.append(f"| {METHOD_LABELS[method]} | {mean:.3f} ± {std:.3f} | {len(got)} | "
                         f"{np.mean([c['train_seconds'] for c in got]):.0f} | {got[0]['trainable_parameters']:,} |")
        by_seed = {c["seed"]: c["baselines"] for c in rows}
        names = sorted({n for b in by_seed.values() for n in b})
        best = max(names, key=lambda n: np.mean([b[n] for b in by_seed.values() if n in b]), default=None)
        if best:
            mean, std = _stats([b[best] for b in by_seed.values() if best in b])
            lines.append(f"| best baseline: {BASELINE_LABELS.get(best, best)} | {mean:.3f} ± {std:.3f} | "
                         f"{len(by_seed)} | | |")
        lines += ["", *[f"- {METHOD_LABELS[c['method']]}, seed {c['seed']}: {c['note']}" for c in rows if c.get("note")]]
        lines.append("")
    lines += ["## Did L-Tuning beat the plain method it improves on?", "",
              "Mean test accuracy difference (L-Tuning − plain), over the seeds both measured:", ""]
    means = []
    for lt, plain in PAIRS:
        for data in doc["settings"]["datasets"]:
            a = {c["seed"]: c["accuracy"] for c in cells if c["data"] == data and c["method"] == lt}
            b = {c["seed"]: c["accuracy"] for c in cells if c["data"] == data and c["method"] == plain}
            both = sorted(set(a) & set(b))
            if both:
                diff = float(np.mean([a[s] - b[s] for s in both]))
                means.append(diff)
                verdict = "better" if diff > 0 else "worse" if diff < 0 else "equal"
                higher = sum(a[s] > b[s] for s in both)
                lines.append(f"- {data}: {METHOD_LABELS[lt]} vs {METHOD_LABELS[plain]}: {diff:+.3f} ({verdict}; "
                             f"higher on {higher} of {len(both)} seeds: {both})")
            else:
                lines.append(f"- {data}: {METHOD_LABELS[lt]} vs {METHOD_LABELS[plain]}: not yet measured")
    if means:
        lines += ["", f"**L-Tuning's mean was higher in {sum(d > 0 for d in means)} of {len(means)} "
                  "(data set, pair) comparisons measured.**"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--extra", default="", help="more `lift_core run` arguments for every cell, e.g. '--epochs 4'")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for methods.{json,md}")
    ap.add_argument("--quick", action="store_true", help="tiny model, iris, seed 0, 1 epoch, into a temp folder")
    ap.add_argument("--rebaseline", action="store_true",
                    help="no runs: measure again the baselines of stored cells measured before baselines chose "
                         "their settings on the validation rows")
    add_pause_option(ap)
    args = ap.parse_args()
    if args.quick:
        args.datasets, args.seeds, args.model = ["iris"], [0], "tiny"
        args.extra = "--virtual-tokens 2"
        epochs = {data: 1 for data in args.datasets}
        args.out = quick_out(args.out, "methods")
    else:
        epochs = {data: n for data, n in EPOCHS.items() if data in args.datasets}
    if args.rebaseline:
        return rebaseline_stored(args.out / "methods.json",
                                 lambda c: c["data"] in args.datasets and c["seed"] in args.seeds
                                 and c["method"] in args.methods, cell_request,
                                 lambda doc: (args.out / "methods.md").write_text(report(doc)))
    extra = shlex.split(args.extra)
    settings = {"model": args.model, "extra": extra, "epochs": epochs, "datasets": args.datasets,
                "methods": args.methods, "seeds": args.seeds}
    cells = Cells(args.out / "methods.json", settings, ("model", "extra", "epochs"),
                  recorded_command("methods.py", sys.argv[1:]))
    for data in args.datasets:
        for seed in args.seeds:
            for method in args.methods:
                if cells.has(data=data, method=method, seed=seed):
                    continue
                if paused(args.pause_file):
                    return 0
                more = ["--epochs", str(epochs[data])] if data in epochs else []
                cell = cells.add(run_cell(data, method, seed, args.model, [*extra, *more]),
                                 lambda doc: (args.out / "methods.md").write_text(report(doc)))
                print(f"{data} seed {seed} {method}: accuracy {cell['accuracy']:.3f}, train {cell['train_seconds']:.0f} s, "
                      f"{cell['trainable_parameters']:,} trained", flush=True)
    return cells.close(args.out / "methods.md")


if __name__ == "__main__":
    sys.exit(main())
