"""How many rows does LIFT need? Test accuracy against the number of training rows, LIFT against
the best baseline (the one best with every row), mean ± std over seeds, on the same test rows.

Each cell (data set × training rows × seed) is ``python -m lift_core run --train-rows N`` in a
fresh process; results go to ``docs/benchmarks/sample_size.json`` as they come (an interrupted
run resumes), with ``sample_size.md`` (table and chart) and ``sample_size.html`` rewritten.

    .venv/bin/python bench/sample_size.py                  # iris and moons
    .venv/bin/python bench/sample_size.py --quick          # tiny model, 1 epoch: checks the script
    .venv/bin/python bench/sample_size.py --rebaseline     # baselines of older cells, measured again
    .venv/bin/python bench/sample_size.py --readme         # README's tables, from the JSON

Baselines choose their settings on each seed's validation rows (``lift_core.baselines``); cells
measured before they did keep their LIFT figures and get their baselines measured again in-process
on the same cut of training rows by ``--rebaseline``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cells import (DEFAULT_OUT, Cells, add_pause_option, baseline_lines, baselines_of, machines,  # noqa: E402
                         paused, quick_out, rebaseline_stored, recorded_command, run_cli, write_readme)
from lift_core.baselines import BASELINE_LABELS  # noqa: E402
from lift_core.experiment import RunRequest  # noqa: E402

SIZES = {"iris": [8, 16, 32, 64, 96], "moons": [16, 32, 64, 128, 256]}
EPOCHS_BEFORE_AUTO = 8  # cells measured before epochs were automatic did not record them: the default was 8


def cell_request(cell: dict) -> RunRequest:
    """The data set, split and cut of training rows a cell's LIFT run used."""
    return RunRequest(data=cell["data"], seed=cell["seed"], train_rows=cell["rows"])


def _mean_of(name: str, cells: list[dict]) -> float:
    """A baseline's mean accuracy over the cells that measured it."""
    return float(np.mean([c["baselines"][name] for c in cells if name in c["baselines"]]))


def curves(cells: list[dict], data: str) -> dict:
    """Per size: LIFT's and the reference baseline's accuracies over seeds.

    The reference is the baseline best with every training row; several often tie there (1.000 on
    moons), so the tie goes to the best over all sizes, then to the name: a set's order changes from
    one process to the next, and the report with it."""
    got = [c for c in cells if c["data"] == data]
    largest = max(c["rows"] for c in got)
    names = sorted({n for c in got if c["rows"] == largest for n in c["baselines"] if n != "majority"})
    best = max(names, key=lambda n: (_mean_of(n, [c for c in got if c["rows"] == largest]), _mean_of(n, got)),
               default=None)
    out = {"best": best, "sizes": []}
    for rows in sorted({c["rows"] for c in got}):
        at = [c for c in got if c["rows"] == rows]
        lift = [c["lift"] for c in at]
        base = [c["baselines"][best] for c in at if best in c["baselines"]]
        out["sizes"].append({"rows": rows, "n": len(at), "lift": (float(np.mean(lift)), float(np.std(lift))),
                             "epochs": sorted({c.get("epochs", EPOCHS_BEFORE_AUTO) for c in at}),
                             "baseline": (float(np.mean(base)), float(np.std(base))) if base else None})
    return out


def chart(doc: dict) -> go.Figure:
    fig = go.Figure()
    for data in sorted({c["data"] for c in doc["cells"]}):
        cv = curves(doc["cells"], data)
        xs = [s["rows"] for s in cv["sizes"]]
        fig.add_scatter(x=xs, y=[s["lift"][0] for s in cv["sizes"]], name=f"{data}: LIFT", mode="lines+markers",
                        error_y={"type": "data", "array": [s["lift"][1] for s in cv["sizes"]]})
        if cv["best"]:
            fig.add_scatter(x=xs, y=[s["baseline"][0] if s["baseline"] else None for s in cv["sizes"]],
                            name=f"{data}: {BASELINE_LABELS.get(cv['best'], cv['best'])}", mode="lines+markers",
                            line={"dash": "dot"})
    fig.update_layout(title="Test accuracy against training rows", xaxis={"title": "training rows", "type": "log"},
                      yaxis={"title": "accuracy", "range": [0, 1.02]})
    return fig


def report(doc: dict) -> str:
    cells = doc["cells"]
    lines = ["# Sample size: how many rows LIFT needs", "",
             f"- **Measured:** cells from {min(c['date'] for c in cells)[:10]} to {max(c['date'] for c in cells)[:10]} "
             f"on {machines(doc['cells'])}; each cell's date, machine and commit are in `sample_size.json`.",
             f"- **Command:** `{doc['command']}`",
             f"- **Settings:** model `{doc['settings']['model']}`, extra arguments "
             f"`{' '.join(doc['settings']['extra']) or '(none: every default)'}`; LIFT's split per seed, its "
             "training rows cut to N (stratified, by the same seed); validation and test rows unchanged. The "
             "baseline is the one best with every training row (on a tie, the best over all sizes). Interactive "
             "chart: `sample_size.html`.",
             *baseline_lines(cells, "sample_size.py"), ""]
    for data in sorted({c["data"] for c in cells}):
        cv = curves(cells, data)
        label = BASELINE_LABELS.get(cv["best"], cv["best"])
        lines += [f"## {data}", "", f"| training rows | n | LIFT's epochs | LIFT | {label} |", "|---|---|---|---|---|"]
        for s in cv["sizes"]:
            base = f"{s['baseline'][0]:.3f} ± {s['baseline'][1]:.3f}" if s["baseline"] else ""
            lines.append(f"| {s['rows']} | {s['n']} | {', '.join(map(str, s['epochs']))} | "
                         f"{s['lift'][0]:.3f} ± {s['lift'][1]:.3f} | {base} |")
        lines += ["", "```mermaid", "xychart-beta", f'    title "{data}: LIFT (bars) vs {label} (line)"',
                  f"    x-axis [{', '.join(str(s['rows']) for s in cv['sizes'])}]", '    y-axis "accuracy" 0 --> 1',
                  "    bar [" + ", ".join(f"{s['lift'][0]:.3f}" for s in cv["sizes"]) + "]",
                  "    line [" + ", ".join(f"{s['baseline'][0]:.3f}" if s["baseline"] else "0"
                                        for s in cv["sizes"]) + "]", "```", ""]
    return "\n".join(lines)


def readme_blocks(doc: dict) -> dict[str, list[str]]:
    """The README's block this suite writes: per data set, LIFT and the reference baseline against
    training rows."""
    lines = []
    for data in sorted({c["data"] for c in doc["cells"]}):
        cv = curves(doc["cells"], data)
        label = BASELINE_LABELS.get(cv["best"], cv["best"])
        lines += [f"| {data} rows | " + " | ".join(str(s["rows"]) for s in cv["sizes"]) + " |",
                  "|---|" + "---|" * len(cv["sizes"]),
                  "| LIFT's epochs | " + " | ".join(", ".join(map(str, s["epochs"])) for s in cv["sizes"]) + " |",
                  "| LIFT | " + " | ".join(f"{s['lift'][0]:.2f} ± {s['lift'][1]:.2f}" for s in cv["sizes"]) + " |",
                  f"| {label} | " + " | ".join(
                      f"{s['baseline'][0]:.2f} ± {s['baseline'][1]:.2f}" if s["baseline"] else "" for s in cv["sizes"])
                  + " |", ""]
    return {"sample-size tables": lines[:-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(SIZES))
    ap.add_argument("--sizes", type=int, nargs="+", help="training rows (default: per data set, see SIZES)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--extra", default="", help="more `lift_core run` arguments for every cell")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="tiny model, 1 epoch, iris with 8 and 16 rows, seed 0")
    ap.add_argument("--rebaseline", action="store_true",
                    help="no LIFT runs: measure again the baselines of stored cells measured before baselines "
                         "chose their settings on the validation rows")
    ap.add_argument("--readme", action="store_true", help="no runs: write README.md's tables from the stored cells")
    add_pause_option(ap)
    args = ap.parse_args()
    if args.quick:
        args.datasets, args.sizes, args.seeds, args.model, args.extra = ["iris"], [8, 16], [0], "tiny", "--epochs 1"
        args.out = quick_out(args.out, "sample-size")
    extra = shlex.split(args.extra)

    def write(doc: dict) -> None:
        (args.out / "sample_size.md").write_text(report(doc))
        chart(doc).write_html(args.out / "sample_size.html", include_plotlyjs="cdn")

    if args.readme:
        source = args.out / "sample_size.json"
        return write_readme("sample_size.py", readme_blocks(json.loads(source.read_text())), source)
    if args.rebaseline:
        return rebaseline_stored(args.out / "sample_size.json", lambda c: c["data"] in args.datasets and c["seed"] in
                                 args.seeds and (not args.sizes or c["rows"] in args.sizes), cell_request, write)

    cells = Cells(args.out / "sample_size.json", {"model": args.model, "extra": extra}, ("model", "extra"),
                  recorded_command("sample_size.py", sys.argv[1:]))

    for data in args.datasets:
        for rows in args.sizes or SIZES.get(data, [16, 32, 64]):
            for seed in args.seeds:
                if cells.has(data=data, rows=rows, seed=seed):
                    continue
                if paused(args.pause_file):
                    return 0
                run, wall = run_cli(["--data", data, "--model", args.model, "--seed", str(seed),
                                     "--train-rows", str(rows), *extra])
                cell = cells.add({"data": data, "rows": rows, "seed": seed, "n_train": run["n_train"],
                                  "lift": run["models"]["lift"]["accuracy"], "epochs": run["models"]["lift"]["epochs"],
                                  "wall_seconds": wall,
                                  **baselines_of(run, "accuracy")}, write)
                print(f"{data} {rows} rows seed {seed}: LIFT {cell['lift']:.3f}", flush=True)
    return cells.close(args.out / "sample_size.md")


if __name__ == "__main__":
    sys.exit(main())
