"""What the resumable benchmarks share: a pause file stops them before their next cell, and the
recorded command leaves the pause out (it changes no result)."""

import json
import shlex
from pathlib import Path

import pytest

from bench_helpers import run_quick
from bench.cells import Cells, covering, recorded_command


@pytest.mark.parametrize("script, raw", [("methods.py", "methods.json"), ("accuracy.py", "accuracy.json"),
                                         ("sample_size.py", "sample_size.json")])
def test_a_pause_file_stops_the_benchmark_before_its_next_cell(tmp_path: Path, script: str, raw: str):
    pause = tmp_path / "pause"
    pause.touch()
    proc = run_quick(script, tmp_path, "--pause-file", str(pause))
    assert f"paused: {pause} exists" in proc.stdout
    assert not (tmp_path / raw).exists()


def test_the_recorded_command_leaves_the_pause_out():
    assert recorded_command("accuracy.py", ["--datasets", "iris", "--pause-file", "/tmp/p", "--seeds", "0"]) == \
        "python bench/accuracy.py --datasets iris --seeds 0"
    assert recorded_command("methods.py", ["--pause-file=/tmp/p"]) == "python bench/methods.py"


def test_the_recorded_command_can_be_pasted_back_into_a_shell():
    """An --extra value with a space must stay one argument, or the report's command runs something else."""
    command = recorded_command("accuracy.py", ["--extra", "--epochs 16", "--out", "docs/x"])
    assert shlex.split(command)[2:] == ["--extra", "--epochs 16", "--out", "docs/x"]


def test_a_run_of_a_few_cells_keeps_the_command_that_reproduces_them_all(tmp_path: Path):
    """A one-cell top-up must not make the report claim the whole table came from the one-cell command."""
    path, same = tmp_path / "a.json", ("model",)
    full = {"model": "bundled", "datasets": ["iris", "wine"], "seeds": [0, 1, 2]}
    cells = Cells(path, full, same, "python bench/accuracy.py")
    cells.add({"data": "iris", "seed": 0}, lambda doc: None)

    top_up = Cells(path, {**full, "datasets": ["wine"], "seeds": [1]}, same,
                   "python bench/accuracy.py --datasets wine --seeds 1")
    top_up.add({"data": "wine", "seed": 1}, lambda doc: None)
    doc = json.loads(path.read_text())
    assert doc["command"] == "python bench/accuracy.py"
    assert doc["settings"]["datasets"] == ["iris", "wine"] and doc["settings"]["seeds"] == [0, 1, 2]
    assert [c["command"] for c in doc["cells"]] == ["python bench/accuracy.py",
                                                    "python bench/accuracy.py --datasets wine --seeds 1"]


def test_two_partial_runs_record_both_commands():
    settings, command = covering({"datasets": ["circles"], "seeds": [0]}, "python bench/accuracy.py --datasets circles",
                                 {"datasets": ["moons"], "seeds": [0]}, "python bench/accuracy.py --datasets moons", ())
    assert settings["datasets"] == ["circles", "moons"]
    assert command == "python bench/accuracy.py --datasets circles; python bench/accuracy.py --datasets moons"
    settings, command = covering({"datasets": ["circles"]}, "one", {"datasets": ["circles", "moons"]}, "all", ())
    assert command == "all"
