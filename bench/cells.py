"""What every benchmark cell does: one ``python -m lift_core run`` in a fresh process, as a user
would run it, in a throw-away workspace; and the commit the cell was measured with."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
# Every script here imports this module before lift_core: set before bitsandbytes is first imported
# (through peft), this keeps its CPU-kernel notice out of the benchmarks' output, as the CLI does.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def save_results(out: Path, stem: str, doc: dict, report: str) -> Path:
    """``<stem>.json`` (the raw figures) and ``<stem>.md`` (their report) in ``out``; the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    (out / f"{stem}.md").write_text(report)
    return out / f"{stem}.md"


def run_cli(args: list[str]) -> tuple[dict, float]:
    """``lift_core run`` with ``args``; its metrics.json and the wall time in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "lift_core", "run", *args, "--out", tmp]
        env = dict(os.environ, LIFT_HOME=str(Path(tmp) / "ws"))
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads((Path(tmp) / "metrics.json").read_text()), wall


def commit() -> str:
    """The code a cell was measured with (cells of one table should share it: it sets the times)."""
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


DEFAULT_OUT = ROOT / "docs" / "benchmarks"


# The README's results tables and charts are written from the suites' JSON by their ``--readme``,
# between markers, never pasted by hand (a hand paste once dropped a chart's line); its prose is
# hand-written.
README = ROOT / "README.md"


def readme_marks(name: str, script: str) -> tuple[str, str]:
    return (f"<!-- {name}: written by `python bench/{script} --readme` from its JSON in docs/benchmarks; do not "
            "edit -->", f"<!-- end of {name} -->")


def with_readme_blocks(text: str, script: str, blocks: dict[str, list[str]]) -> str:
    """``text`` (the README) with the block between each name's markers made its lines."""
    for name, lines in blocks.items():
        start, end = readme_marks(name, script)
        if start not in text or end not in text:
            raise ValueError(f"the README has no markers for the {name}: put the lines {start} and {end} where "
                             "it belongs")
        head, rest = text.split(start, 1)
        text = "\n".join([head + start, *lines, end + rest.split(end, 1)[1]])
    return text


def write_readme(script: str, blocks: dict[str, list[str]], source: Path) -> int:
    """A suite's ``--readme``: its blocks of README.md written anew from ``source``; the exit status."""
    README.write_text(with_readme_blocks(README.read_text(), script, blocks))
    print(f"{README}: {', '.join(blocks)} written from {source}")
    return 0


def add_pause_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--pause-file", type=Path, help="stop before the next cell while this file exists (the CPU "
                    "is needed elsewhere; run again to resume)")


def recorded_command(script: str, argv: list[str]) -> str:
    """The command as recorded in a report, quoted to paste back into a shell; pausing changes no
    result, so ``--pause-file`` is left out."""
    if "--pause-file" in argv:
        i = argv.index("--pause-file")
        argv = argv[:i] + argv[i + 2:]
    return shlex.join(["python", f"bench/{script}", *[a for a in argv if not a.startswith("--pause-file=")]])


# The widest matrix instructions decide whether bf16 training pays on a CPU (the run probes it):
# two 2-core machines both named "AMD EPYC" trained about 3x apart (float32 on one, bf16 on the
# other), so the label says which.
_MATRIX_FLAGS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 bf16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def machine(cpuinfo: str | None = None) -> str:
    """Cores, CPU name with family/model and widest matrix instructions, OS and Python.

    ``cpuinfo`` is /proc/cpuinfo's text (read when not given; absent off Linux).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    first = cpuinfo.split("\n\n")[0].splitlines()
    info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first if ":" in line)}
    cpu = platform.processor() or platform.machine()
    if "model name" in info:
        flags = set(info.get("flags", "").split())
        widest = next((name for flag, name in _MATRIX_FLAGS if flag in flags), "no AVX2")
        cpu = f"{info['model name']}, family {info.get('cpu family', '?')} model {info.get('model', '?')}, {widest}"
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}, Python {platform.python_version()}"


def baselines_of(doc: dict, metric: str) -> dict:
    """A run's baseline scores and the settings each chose on the validation rows, for a cell."""
    scored = {k: v for k, v in doc["models"].items() if k != "lift" and v.get(metric) is not None}
    return {"baselines": {k: v[metric] for k, v in scored.items()},
            "baseline_params": {k: v["params"] for k, v in scored.items() if "params" in v}}


def baseline_lines(cells: list[dict], script: str) -> list[str]:
    """How a report's baselines were measured: how many cells predate their settings search, and
    which had them measured again by ``bench/<script> --rebaseline``."""
    chosen = ("settings chosen on each seed's validation rows (the grids in `lift_core/baselines.py`), then "
              "fitted on its training rows, as LIFT is")
    stale = sum("baseline_params" not in c for c in cells)
    defaults = ("scikit-learn's defaults, measured before baselines chose their settings on the validation rows, "
                "so they may understate the baselines")
    if not stale:
        lines = [f"- **Baselines:** {chosen}."]
    elif stale == len(cells):
        lines = [f"- **Baselines:** {defaults}."]
    else:
        lines = [f"- **Baselines:** {chosen}; except in {stale} of {len(cells)} cells: {defaults}."]
    again = [c for c in cells if "baselines_commit" in c]
    if again:
        commits = ", ".join(dict.fromkeys(c["baselines_commit"] for c in again))
        lines.append(f"- **Baselines measured again** for {len(again)} cells measured before baselines chose their "
                     f"settings, by `python bench/{script} --rebaseline` at commit(s) {commits}; their LIFT figures "
                     "are as measured.")
    return lines


def baselines_again(request) -> dict:
    """A cell's baselines measured in-process on the split its LIFT run used (``request``, a
    ``RunRequest``: data set, seed, any cut of the training rows), settings chosen on its validation
    rows: what a cell records today, for one measured before baselines chose their settings."""
    from lift_core.baselines import run_baselines
    from lift_core.experiment import load_table

    table = load_table(request)
    p, split = table.prepared, table.split
    results = run_baselines(p.task, p.frame, p.features, p.target, split.train, split.test, request.seed,
                            split_val_idx=split.val)
    metric = "accuracy" if p.task == "classification" else "rae"
    return baselines_of({"models": {k: v["metrics"] for k, v in results.items() if "metrics" in v}}, metric)


def rebaseline(doc: dict, chosen: Callable[[dict], bool], request_of: Callable[[dict], object],
               write: Callable[[dict], None]) -> int:
    """Measure again the baselines of every ``chosen`` cell that has none chosen on validation rows
    (seconds a cell: no language model is involved), saving after each; how many were measured.
    Cells on the same split (the methods suite's five methods of a seed) share one measurement."""
    done, measured = 0, {}
    for cell in doc["cells"]:
        if "baseline_params" in cell or not chosen(cell):
            continue
        request = request_of(cell)
        key = json.dumps(request.to_dict(), sort_keys=True, default=str)
        if key not in measured:
            measured[key] = baselines_again(request)
        cell.update(copy.deepcopy(measured[key]), baselines_commit=commit())
        done += 1
        print(f"{', '.join(f'{k} {cell[k]}' for k in ('data', 'rows', 'seed', 'method') if k in cell)}: baselines measured again",
              flush=True)
        write(doc)
    return done


def rebaseline_stored(path: Path, chosen: Callable[[dict], bool], request_of: Callable[[dict], object],
                      write_reports: Callable[[dict], None]) -> int:
    """``--rebaseline`` of a suite: ``rebaseline`` on its stored JSON, saved after each cell, with
    its reports rewritten; the exit status. The JSON's settings and command stay its LIFT runs'."""
    if not path.exists():
        print(f"{path} holds no cells to measure again; measure some first", file=sys.stderr)
        return 2
    doc = json.loads(path.read_text())

    def save(doc: dict) -> None:
        path.write_text(json.dumps(doc, indent=1))
        write_reports(doc)

    print(f"{rebaseline(doc, chosen, request_of, save)} cells' baselines measured again")
    return 0


def machines(cells: list[dict]) -> str:
    """Every machine that measured a cell, with its count: times only compare on one machine."""
    counts = Counter(c.get("machine", "unknown") for c in cells)
    return "; ".join(f"{m} ({n} cell{'s' if n > 1 else ''})" for m, n in counts.items())


def paused(pause_file: Path | None) -> bool:
    """True (and says so) when the user asked the benchmark to stop before its next cell."""
    if pause_file and pause_file.exists():
        print(f"paused: {pause_file} exists", flush=True)
        return True
    return False


def quick_out(out: Path, name: str) -> Path:
    """Where a ``--quick`` check writes: never into the committed results."""
    return Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) if out == DEFAULT_OUT else out


def covering(old: dict, old_command: str | None, new: dict, new_command: str,
             same: tuple[str, ...]) -> tuple[dict, str]:
    """The settings and command for a JSON that holds cells of an earlier run and of this one.

    List settings outside ``same`` are merged (earlier order first); the command is the one run
    whose lists cover the merge, or both, joined by "; ", when neither does alone.
    """
    merged, new_covers, old_covers = dict(new), True, True
    for key, value in new.items():
        if key in same or not isinstance(value, list) or not isinstance(old.get(key), list):
            continue
        merged[key] = [*old[key], *[v for v in value if v not in old[key]]]
        new_covers &= set(map(str, value)) >= set(map(str, merged[key]))
        old_covers &= set(map(str, old[key])) >= set(map(str, merged[key]))
    if new_covers or not old_command:
        return merged, new_command
    return merged, old_command if old_covers else f"{old_command}; {new_command}"


class Cells:
    """A benchmark's raw JSON, growing one measured cell at a time, so a run resumes where it stopped.

    Cells measured with other values of the ``same`` settings are never mixed in: the run is refused.
    The other list settings (data sets, seeds) say what the JSON covers, so a run of a few cells into
    a larger JSON widens them and keeps the command that reproduces all of it (see ``covering``).
    """

    def __init__(self, path: Path, settings: dict, same: tuple[str, ...], command: str) -> None:
        self.path = path
        self.doc = json.loads(path.read_text()) if path.exists() else {"cells": []}
        old = self.doc.get("settings", {})
        if self.doc["cells"] and any(old.get(k) != settings.get(k) for k in same):
            print(f"{path} holds cells measured with other settings ({', '.join(same)}); use another --out",
                  file=sys.stderr)
            raise SystemExit(2)
        self.machine = machine()
        self.command = command
        if self.doc["cells"]:
            settings, command = covering(old, self.doc.get("command"), settings, command, same)
        self.doc.update(settings=settings, machine=self.machine, command=command)
        self.measured = 0

    def has(self, **key) -> bool:
        return any(all(c.get(k) == v for k, v in key.items()) for c in self.doc["cells"])

    def add(self, cell: dict, write_reports) -> dict:
        """Stamp the cell (date, machine, commit), save the JSON, and rewrite the reports from it."""
        from datetime import datetime, timezone

        cell.update(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), machine=self.machine,
                    commit=commit(), command=self.command)
        self.doc["cells"].append(cell)
        self.measured += 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.doc, indent=1))
        write_reports(self.doc)
        return cell

    def close(self, report: Path) -> int:
        if not self.measured:
            print("nothing to do: every cell is measured", file=sys.stderr)
        print(f"report: {report}")
        return 0
