"""LIFT's tables, offline: every Table-4 classification set we have and the 12 synthetic regression
functions, LIFT (bundled model) against every baseline, 3 seeds, next to the paper's figures.

Each cell (data set × seed) is one ``python -m lift_core run`` in a fresh process; results are
appended to ``docs/benchmarks/accuracy.json`` as they come, so an interrupted suite resumes where
it stopped, and ``accuracy.md`` (tables and a chart) and ``accuracy.html`` (interactive chart) are
rewritten after every cell with the date, machine and command. Cells run cheapest data set first;
``--pause-file F`` stops the suite before its next cell while F exists. A cell keeps training
checkpoints (``--checkpoints``), so one killed part-way (digits trains for hours on a CPU) carries
on from its last checkpoint when the same command runs again, and its training time is the sum of
its parts.

    .venv/bin/python bench/accuracy.py                        # everything (many CPU hours)
    .venv/bin/python bench/accuracy.py --datasets iris wine   # some
    .venv/bin/python bench/accuracy.py --quick                # tiny model, 1 epoch: checks the script
    .venv/bin/python bench/accuracy.py --rebaseline           # baselines of older cells, measured again
    .venv/bin/python bench/accuracy.py --readme               # README's tables and charts, from the JSON

Baselines choose their settings on each seed's validation rows (``lift_core.baselines``); cells
measured before they did keep their LIFT figures and get their baselines measured again in-process
by ``--rebaseline`` (seconds a cell: no language model is involved).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import (DEFAULT_OUT, Cells, add_pause_option, baseline_lines, baselines_of,  # noqa: E402
                         machines, paused, quick_out, rebaseline_stored, recorded_command, run_cli, write_readme)
from bench.paper import CLASSIFICATION, REGRESSION  # noqa: E402
from lift_core.baselines import BASELINE_LABELS  # noqa: E402
from lift_core.experiment import RunRequest  # noqa: E402
from lift_core.models import cache_dir  # noqa: E402

DATASETS = [*CLASSIFICATION, *REGRESSION]  # the reports' order: the paper's
# The order cells are measured in: cheapest first (on a 2-core CPU, minutes for iris, hours for
# digits), so a suite stopped part-way has measured the most data sets.
CHEAP_FIRST = ["iris", "wine", "moons", "blobs", "nine_clusters", "circles", "two_circles", *REGRESSION,
               "breast_cancer", "digits"]


def checkpoint_folder(checkpoints: Path, data: str, seed: int, model: str, extra: list[str]) -> Path:
    """One folder a cell and its settings: a cell stopped with ``--extra "--epochs 16"`` and the
    same cell at the defaults must not share one, or the second is refused the first's checkpoints."""
    name = f"accuracy-{data}-seed{seed}-{re.sub(r'[^A-Za-z0-9_.-]', '_', model)}"
    if extra:  # the defaults keep the name they always had, so a stopped default cell still carries on
        name += "-" + hashlib.sha1(shlex.join(extra).encode()).hexdigest()[:8]
    return checkpoints / name


def run_cell(data: str, seed: int, model: str, extra: list[str], checkpoints: Path) -> dict:
    folder = checkpoint_folder(checkpoints, data, seed, model, extra)
    doc, wall = run_cli(["--data", data, "--model", model, "--seed", str(seed), *extra, "--checkpoint-dir", str(folder)])
    main = "accuracy" if doc["task"] == "classification" else "rae"
    keep = ("accuracy", "macro_f1", "invalid_rate") if main == "accuracy" else ("rae", "rae_filtered", "rmse",
                                                                                "invalid_rate")
    lm = doc["models"]["lift"]
    return {"data": data, "seed": seed, "task": doc["task"], "n_train": doc["n_train"], "n_test": doc["n_test"],
            "lift": {k: lm.get(k) for k in keep}, "learning_rate": lm.get("learning_rate"),
            "best_epoch": lm.get("best_epoch"), "bf16": lm.get("bf16"), "train_seconds": lm["train_seconds"],
            "resumed_at_steps": lm["resumed_at_steps"],  # train_seconds sums the parts; wall is the last part's
            "wall_seconds": None if lm["resumed_at_steps"] else wall, "tokens_per_s": lm.get("tokens_per_s"),
            "n_val": doc.get("n_val"), "epochs": _epochs(doc), **baselines_of(doc, main)}


def _epochs(doc: dict) -> list[dict]:
    """Each epoch's training loss and validation figures, which the README's prose cites (digits
    learning at every epoch) and which the test figures alone do not show."""
    return [{k: v for k, v in h.items() if k == "epoch" or k == "train_loss" or k.startswith("val_")}
            for h in doc.get("history") or []]


def cell_request(cell: dict) -> RunRequest:
    """The data set and split a cell's LIFT run used (its baselines are measured again on it)."""
    return RunRequest(data=cell["data"], seed=cell["seed"])


def _ms(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))  # population std, as LIFT reports it


def _pm(row: dict, digits: int) -> str:
    """Mean ± std, or the one value where one seed gives no std (a "± 0" would read as no spread)."""
    if row["n"] == 1:
        return f"{row['mean']:.{digits}f} (one seed)"
    return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}"


def summary(cells: list[dict]) -> list[dict]:
    """One row per data set: ours (mean ± std over seeds), our best baseline, the paper's figures."""
    rows = []
    for data in DATASETS:
        got = [c for c in cells if c["data"] == data]
        if not got:
            continue
        task = got[0]["task"]
        main, scale = ("accuracy", 100.0) if task == "classification" else ("rae", 1.0)
        mean, std = _ms([c["lift"][main] * scale for c in got])
        base = {}
        for c in got:
            for name, value in c["baselines"].items():
                base.setdefault(name, []).append(value * scale)
        pick = max if task == "classification" else min
        best = pick(base, key=lambda n: np.mean(base[n])) if base else None
        paper = (CLASSIFICATION if task == "classification" else REGRESSION).get(data, {})
        paper_base = {k: v for k, v in paper.items() if not k.startswith("LIFT/")}
        row = {"data": data, "task": task, "n": len(got), "mean": mean, "std": std,
               "best_baseline": best, "best_baseline_mean": float(np.mean(base[best])) if best else None,
               "gptj": paper.get("LIFT/GPT-J"), "gpt3": paper.get("LIFT/GPT-3"),
               # the paper's baselines were run by its authors: a check that ours are no weaker
               "paper_best": pick(paper_base.items(), key=lambda kv: kv[1]) if paper_base else None,
               "train_seconds": float(np.mean([c["train_seconds"] for c in got])),
               "machines": len({c.get("machine") for c in got})}
        if task == "regression":
            row["filtered_mean"] = _ms([c["lift"]["rae_filtered"] for c in got])[0]
        if row["gptj"] is not None and task == "classification" and len(got) > 1:  # one seed has no std
            row["within_one_std"] = mean >= row["gptj"] - std  # as good, or short by at most one std
        rows.append(row)
    return rows


def chart(rows: list[dict]) -> go.Figure:
    """Ours beside the paper and our best baseline: accuracy on top, regression's RAE below."""
    panels = [(part, title) for part, title in (
        ([r for r in rows if r["task"] == "classification"], "Classification: test accuracy % (higher is better)"),
        ([r for r in rows if r["task"] == "regression"], "Regression: test RAE (lower is better)")) if part]
    fig = make_subplots(rows=max(1, len(panels)), cols=1, subplot_titles=[title for _, title in panels],
                        vertical_spacing=0.15)
    for i, (part, _) in enumerate(panels, start=1):
        x = [r["data"] for r in part]
        traces = [("ours: LIFT", [r["mean"] for r in part], [r["std"] for r in part]),
                  ("paper: LIFT/GPT-J 6B", [r["gptj"] for r in part], None),
                  ("ours: best baseline", [r["best_baseline_mean"] for r in part], None)]
        for colour, (name, y, std) in zip(plotly.colors.qualitative.Plotly, traces):
            fig.add_bar(name=name, x=x, y=y, error_y=None if std is None else {"type": "data", "array": std},
                        marker_color=colour, legendgroup=name, showlegend=i == 1, row=i, col=1)
        if part[0]["task"] == "classification":
            fig.update_yaxes(title_text="accuracy %", range=[0, 100], row=i, col=1)
        else:
            fig.update_yaxes(title_text="RAE", row=i, col=1)
    fig.update_layout(barmode="group", height=450 * max(1, len(panels)),
                      title="LIFT against LIFT/GPT-J and our best baseline, mean ± std over the seeds measured")
    return fig


def mermaid(rows: list[dict], model: str, task: str = "classification") -> list[str]:
    """A chart that renders in the README itself (GitHub draws mermaid): ours as bars, paper as a line."""
    part = [r for r in rows if r["task"] == task and r["gptj"] is not None]
    if not part:
        return []
    if task == "classification":
        title, axis, fmt = "Accuracy %", '"accuracy %" 0 --> 100', "{:.1f}"
    else:
        top = max(max(r["mean"], r["gptj"]) for r in part)
        title, axis, fmt = "Regression RAE, lower is better", f'"RAE" 0 --> {np.ceil(top * 10) / 10:.1f}', "{:.3f}"
    ours = ", ".join(fmt.format(r["mean"]) for r in part)
    paper = ", ".join(fmt.format(r["gptj"]) for r in part)
    names = ", ".join(r["data"] for r in part)
    return ["```mermaid", "xychart-beta",
            f'    title "{title}: ours (bars, model {model}) vs LIFT/GPT-J 6B (line)"',
            f"    x-axis [{names}]", f"    y-axis {axis}", f"    bar [{ours}]", f"    line [{paper}]",
            "```"]


def report(doc: dict) -> str:
    rows = summary(doc["cells"])
    cells = doc["cells"]
    lines = ["# LIFT's benchmarks, offline", "",
             f"- **Measured:** cells from {min(c['date'] for c in cells)[:10]} to {max(c['date'] for c in cells)[:10]} "
             f"on {machines(cells)}; each cell's date, machine and commit are listed at the end.",
             f"- **Command:** `{doc['command']}`",
             f"- **Settings:** model `{doc['settings']['model']}`, extra arguments "
             f"`{' '.join(doc['settings']['extra']) or '(none: every default)'}`; LIFT's split per seed; "
             "mean ± population std over the seeds measured (n).", *baseline_lines(cells, "accuracy.py"), ""]
    cls = [r for r in rows if r["task"] == "classification"]
    if cls:
        lines += ["## Classification: test accuracy (%)", "",
                  "| data set | n | ours: LIFT | ours: best baseline | paper: best baseline | paper: LIFT/GPT-J | paper: LIFT/GPT-3 | within one std of GPT-J | train s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in cls:
            within = ("yes" if r["within_one_std"] else "**no**") if "within_one_std" in r else \
                ("(one seed: no std yet)" if r["gptj"] is not None else "")
            lines.append(f"| {r['data']} | {r['n']} | {_pm(r, 2)} | "
                         f"{BASELINE_LABELS.get(r['best_baseline'], r['best_baseline'])} {r['best_baseline_mean']:.2f} | "
                         f"{_paper_best(r, 2)} | {_num(r['gptj'], 2)} | {_num(r['gpt3'], 2)} | "
                         f"{within} | {_seconds(r)} |")
        compared = [r for r in cls if "within_one_std" in r]
        lines += ["", f"Within one std of LIFT/GPT-J 6B (or above it): **{sum(r['within_one_std'] for r in compared)} "
                  f"of {len(compared)}** data sets the paper reports and we measured on more than one seed.", "", *mermaid(rows, doc["settings"]["model"]), ""]
    reg = [r for r in rows if r["task"] == "regression"]
    if reg:
        lines += ["## Regression: test RAE (lower is better)", "",
                  "| function | n | ours: LIFT | ours: LIFT, outliers filtered | ours: best baseline | paper: best baseline | paper: LIFT/GPT-J | paper: LIFT/GPT-3 | ours against GPT-J | train s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in reg:
            gap = r["mean"] - r["gptj"]
            against = f"better by {-gap:.3f}" if gap < 0 else ("equal" if gap == 0 else f"**worse by {gap:.3f}**")
            lines.append(f"| {r['data']} | {r['n']} | {_pm(r, 3)} | {r['filtered_mean']:.3f} | "
                         f"{BASELINE_LABELS.get(r['best_baseline'], r['best_baseline'])} {r['best_baseline_mean']:.3f} | "
                         f"{_paper_best(r, 3)} | {_num(r['gptj'], 3)} | {_num(r['gpt3'], 3)} | {against} | {_seconds(r)} |")
        lines += ["", f"Lower RAE than LIFT/GPT-J 6B's mean: **{sum(r['mean'] < r['gptj'] for r in reg)} of {len(reg)}** "
                  "functions measured (the paper gives no std for regression, so no \"within one std\" here).", "",
                  *mermaid(rows, doc["settings"]["model"], "regression"), ""]
    missing = [d for d in doc["settings"]["datasets"] if d not in {r["data"] for r in rows}]
    if missing:
        lines += [f"Not yet measured: {', '.join(missing)}.", ""]
    return "\n".join(lines + cell_table(cells))


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _paper_best(row: dict, digits: int) -> str:
    return "" if row["paper_best"] is None else f"{row['paper_best'][0]} {row['paper_best'][1]:.{digits}f}"


def _seconds(row: dict) -> str:
    return f"{row['train_seconds']:.0f}" + (f" ({row['machines']} machines: see the cells)" if row["machines"] > 1 else "")


def cell_table(cells: list[dict]) -> list[str]:
    """Each cell as measured. bf16 matters: on CPU the run picks it by a speed probe, so one CPU
    trains in bf16 and another in float32, and their figures differ by more than rounding."""
    order = {d: i for i, d in enumerate(DATASETS)}
    lines = ["## Cells", "", "| data set | seed | LIFT | best epoch | learning rate | bf16 | train s | date | commit | machine |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(cells, key=lambda c: (order.get(c["data"], len(order)), c["seed"])):
        value = c["lift"].get("accuracy", c["lift"].get("rae"))
        bf16 = {True: "yes", False: "no"}.get(c.get("bf16"), "not recorded")
        rate = "" if c.get("learning_rate") is None else f"{c['learning_rate']:.2e}"
        resumed = c.get("resumed_at_steps") or []  # a cell killed part-way and carried on from checkpoints
        parts = f" (carried on at step {', '.join(map(str, resumed))})" if resumed else ""
        lines.append(f"| {c['data']} | {c['seed']} | {value:.4f} | {c.get('best_epoch') or ''} | {rate} | {bf16} | "
                     f"{c['train_seconds']:.0f}{parts} | {c['date'][:10]} | {c.get('commit', '')} | {c['machine']} |")
    return lines + [""]


_SHORT_LABELS = {"poly3": "cubic polynomial", "mlp": "MLP", "svm": "RBF SVM", "gp": "Gaussian process"}


def _cpu(machine: str) -> str:
    """A cell's machine in a few words: "2 cores (AMD EPYC, family 25 model 17, ...), ..." is "EPYC family 25"."""
    inner = machine.split(" (", 1)[-1].rsplit("), ", 1)[0]
    name = " ".join(w for w in inner.split(",")[0].replace("(R)", "").split() if w not in ("AMD", "Intel", "Processor"))
    family = re.search(r"family (\d+)", inner)
    return f"{name} family {family.group(1)}" if family else name


def _seconds_by_cpu(cells: list[dict]) -> str:
    """Mean training seconds a seed on each CPU: seconds only compare on one machine."""
    by: dict[str, list[float]] = {}
    for c in cells:
        by.setdefault(_cpu(c.get("machine", "unknown")), []).append(c["train_seconds"])
    return ", ".join(f"{np.mean(s):.0f} ({cpu})" for cpu, s in by.items())


def _against_gptj(row: dict) -> str:
    if row["gptj"] is None:
        return "no GPT-J figure to compare"
    gap = row["mean"] - row["gptj"]
    if "within_one_std" not in row:
        return f"one seed, no std yet ({gap:+.2f})"
    if gap > 0:
        return f"yes, above it by {gap:.2f}"
    if gap == 0:
        return "yes, equal"
    return f"yes, by its spread ({-gap:.2f} short)" if row["within_one_std"] else f"**no**, {-gap:.2f} short"


def readme_block(doc: dict, task: str) -> list[str]:
    """The README's table and chart for one task, from the stored cells."""
    rows = [r for r in summary(doc["cells"]) if r["task"] == task]
    by_data = {r["data"]: sorted((c for c in doc["cells"] if c["data"] == r["data"]), key=lambda c: c["seed"])
               for r in rows}

    def best(r: dict, digits: int) -> str:
        key = r["best_baseline"]
        name = _SHORT_LABELS.get(key) or BASELINE_LABELS.get(key, key).lower()
        return f"{r['best_baseline_mean']:.{digits}f} ({name})"

    if task == "classification":
        lines = ["| data set | n | ours: LIFT | paper: LIFT/GPT-J 6B | ours: best baseline | within one std of GPT-J | "
                 "train s a seed (CPU) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['data']} | {r['n']} | {_pm(r, 2)} | {_num(r['gptj'], 2) or 'not reported'} | {best(r, 2)} | "
                  f"{_against_gptj(r)} | {_seconds_by_cpu(by_data[r['data']])} |" for r in rows]
    else:
        lines = ["| function | n | ours: LIFT | paper: LIFT/GPT-J 6B | paper: LIFT/GPT-3 | ours: best baseline | "
                 "paper: best baseline | best epoch, by seed |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            ours = _pm(r, 3) if r["gptj"] is None or r["mean"] >= r["gptj"] else f"**{_pm(r, 3)}**"
            epochs = ", ".join(str(c.get("best_epoch") or "?") for c in by_data[r["data"]])
            lines.append(f"| {r['data']} | {r['n']} | {ours} | {_num(r['gptj'], 3)} | {_num(r['gpt3'], 3)} | "
                         f"{best(r, 3)} | {_num(r['paper_best'][1], 3)} ({r['paper_best'][0]}) | {epochs} |")
    return [*lines, "", *mermaid(rows, doc["settings"]["model"], task)]


def readme_blocks(doc: dict) -> dict[str, list[str]]:
    """The README's blocks this suite writes: each task's table and chart."""
    return {f"{task} results": readme_block(doc, task) for task in ("classification", "regression")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--extra", default="", help="more `lift_core run` arguments for every cell")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--checkpoints", type=Path, default=cache_dir() / "bench-checkpoints",
                    help="where a cell keeps its training checkpoints until it is recorded (default: in LIFT "
                         "Studio's cache, LIFT_CACHE or ~/.cache/lift-studio)")
    ap.add_argument("--quick", action="store_true", help="tiny model, 1 epoch, iris and linear_1d, seed 0")
    ap.add_argument("--rebaseline", action="store_true",
                    help="no LIFT runs: measure again the baselines of stored cells measured before baselines "
                         "chose their settings on the validation rows")
    ap.add_argument("--readme", action="store_true",
                    help="no runs: write README.md's results tables and charts from the stored cells")
    add_pause_option(ap)
    args = ap.parse_args()
    if args.readme:
        source = args.out / "accuracy.json"
        return write_readme("accuracy.py", readme_blocks(json.loads(source.read_text())), source)
    if args.quick:
        args.datasets, args.seeds, args.model, args.extra = ["iris", "linear_1d"], [0], "tiny", "--epochs 1"
        args.out = quick_out(args.out, "accuracy")
        args.checkpoints = args.out / "checkpoints"  # a check run beside others shares no checkpoint folder
    extra = shlex.split(args.extra)

    def write(doc: dict) -> None:
        (args.out / "accuracy.md").write_text(report(doc))
        chart(summary(doc["cells"])).write_html(args.out / "accuracy.html", include_plotlyjs="cdn")

    if args.rebaseline:
        return rebaseline_stored(args.out / "accuracy.json",
                                 lambda c: c["data"] in args.datasets and c["seed"] in args.seeds, cell_request, write)

    cells = Cells(args.out / "accuracy.json", {"model": args.model, "extra": extra, "datasets": args.datasets,
                                               "seeds": args.seeds}, ("model", "extra"),
                  recorded_command("accuracy.py", sys.argv[1:]))

    for data in sorted(args.datasets, key=CHEAP_FIRST.index):
        for seed in args.seeds:
            if cells.has(data=data, seed=seed):
                continue
            if paused(args.pause_file):
                return 0
            cell = cells.add(run_cell(data, seed, args.model, extra, args.checkpoints), write)
            main_value = cell["lift"].get("accuracy", cell["lift"].get("rae"))
            print(f"{data} seed {seed}: LIFT {main_value:.3f}, train {cell['train_seconds']:.0f} s", flush=True)
    return cells.close(args.out / "accuracy.md")


if __name__ == "__main__":
    sys.exit(main())
