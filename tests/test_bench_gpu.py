"""The GPU speed benchmark keeps working where CI can run it: ``--quick`` (CPU, a tiny Llama, full
precision) builds a random-weight model folder and measures both recipes through it; asked for
4-bit without CUDA it refuses in one sentence; its architectures have their published sizes."""

import json
import subprocess
import sys

import pytest
import torch

from bench_helpers import REPO, run_quick


@pytest.mark.slow
def test_quick_gpu_benchmark_trains_both_recipes_on_a_random_weight_folder_and_resumes(tmp_path):
    run_quick("gpu.py", tmp_path / "first", "--generate-rows", "12")
    doc = json.loads((tmp_path / "first" / "gpu.json").read_text())
    assert [(r["arch"], r["quantization"], r["result"]["variant"]) for r in doc["runs"]] == [
        ("tiny-llama", "none", "plain"), ("tiny-llama", "none", "ours")]
    plain, ours = (r["result"] for r in doc["runs"])
    assert plain["train_tokens"] == ours["train_tokens"] > 0
    generated = ours["predict"]["per_row_generate"]
    assert ours["predict"]["scoring"]["rows_per_s"] > 0 and generated["rows_per_s"] > 0
    assert generated["rows"] == 12 < ours["predict"]["rows"]  # the table's last 12 rows, all test rows
    assert not plain["gradient_checkpointing"] and not ours["gradient_checkpointing"]  # full precision: never
    assert doc["failed"] == [] and doc["commit"]
    assert doc["device"] == "cpu" and "| tiny-llama | none | ours | no |" in (tmp_path / "first" / "gpu.md").read_text()

    # Resumed with every variant measured: nothing is trained again, and each run keeps where it was measured.
    run_quick("gpu.py", tmp_path / "again", "--resume", str(tmp_path / "first" / "gpu.json"))
    again = json.loads((tmp_path / "again" / "gpu.json").read_text())
    assert [r["result"] for r in again["runs"]] == [r["result"] for r in doc["runs"]]
    assert all(r["measured"]["command"] == doc["runs"][0]["measured"]["command"] for r in again["runs"])
    assert "--resume" in again["command"] and "--resume" not in doc["command"]

    # Other settings would not compare: refused in one line.
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--quick", "--seed", "1", "--out", str(tmp_path / "no"),
                           "--resume", str(tmp_path / "first" / "gpu.json")], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "measured with {'data': 'iris', 'epochs': 1, 'seed': 0}" in proc.stderr


@pytest.mark.slow
def test_a_failed_variant_is_recorded_and_the_others_still_run(tmp_path):
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--quick", "--data", "no_such_table.csv", "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    doc = json.loads((tmp_path / "gpu.json").read_text())
    assert doc["runs"] == [] and [f["recipe"] for f in doc["failed"]] == ["plain", "ours"]
    assert all("no_such_table.csv" in f["error"] for f in doc["failed"]), doc["failed"]
    assert "## Failed" in (tmp_path / "gpu.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no CUDA")
def test_4bit_without_cuda_is_refused_with_a_reason(tmp_path):
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--tokenizer", "tiny", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "4-bit QLoRA needs a CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "gpu.json").exists()


@pytest.mark.parametrize("arch, parameters", [("smollm2-135m", 134.5e6), ("qwen2.5-0.5b", 494.0e6)])
def test_architectures_have_their_published_sizes(arch, parameters):
    from transformers import AutoConfig, AutoModelForCausalLM

    from bench.gpu import ARCHITECTURES

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**ARCHITECTURES[arch]))
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(parameters, rel=0.01)


def test_saved_tokenizer_loads_as_a_folder_and_encodes_the_same(tmp_path):
    from lift_core.models import load_tokenizer

    proc = subprocess.run([sys.executable, "bench/gpu.py", "--tokenizer", "tiny", "--save-tokenizer", str(tmp_path / "tok")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = "When we have sepal length=5.1, what is the species? setosa"
    assert load_tokenizer(str(tmp_path / "tok"))(text)["input_ids"] == load_tokenizer("tiny")(text)["input_ids"]
