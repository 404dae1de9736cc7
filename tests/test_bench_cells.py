"""What the resumable benchmarks share: a pause file stops them before their next cell, and the
recorded command leaves the pause out (it changes no result)."""

from pathlib import Path

import pytest

from bench_helpers import run_quick
from bench.cells import recorded_command


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
