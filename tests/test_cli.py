"""The command line's contract for bad input: exit status 2 and exactly one line on stderr,
``error: <what is wrong and what to do>``, before any run is recorded or any weights load.

Most cases call ``lift_core.cli.main`` in-process (fast); one runs ``python -m lift_core`` as a
real subprocess to prove the entry point's own exit status and stderr.
"""

import gzip
import os
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from lift_core.cli import _parser, _request, main
from lift_core.experiment import RunRequest, open_checkpoints
from lift_core.training import STATE_FILE
from lift_core.store import RunStore

REPO = Path(__file__).resolve().parents[1]
IRIS_FEATURES = "sepal length,sepal width,petal length,petal width"


def one_error_line(capsys, argv) -> str:
    """Run the command line in-process; assert the bad-input contract; return the message."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, f"exit {code}, stderr: {err!r}"
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert out == "", out
    return lines[0]


def no_runs_recorded() -> bool:
    return RunStore().list_runs() == []


@pytest.fixture
def rows_csv(tmp_path) -> Path:
    """A valid file of new iris rows for ``predict`` (so only the adapter is wrong)."""
    path = tmp_path / "rows.csv"
    path.write_text(f"{IRIS_FEATURES}\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    return path


# ------------------------------------------------------------------------------- datasets


def test_datasets_lists_iris_and_linear_1d(capsys):
    assert main(["datasets"]) == 0
    out, err = capsys.readouterr()
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert "iris" in names and "linear_1d" in names
    assert err == ""


# ------------------------------------------------------------------------------- run: the table


def test_missing_file(capsys, tmp_path):
    msg = one_error_line(capsys, ["run", "--data", tmp_path / "nowhere.csv", "--model", "tiny"])
    assert "nowhere.csv" in msg and "does not exist" in msg and "check the path" in msg
    assert no_runs_recorded()


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "empty" in msg and "choose a file" in msg


def test_header_only_file(capsys, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "no data rows" in msg


def test_binary_file(capsys, tmp_path):
    path = tmp_path / "table.csv"  # a gzip saved under a .csv name
    path.write_bytes(gzip.compress(b"x,y\n1,a\n2,b\n" * 20))
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "binary" in msg and "choose a CSV" in msg


def test_unknown_builtin_name(capsys):
    msg = one_error_line(capsys, ["run", "--data", "irsi", "--model", "tiny"])
    assert "'irsi'" in msg and "iris" in msg and "datasets" in msg
    assert no_runs_recorded()


def test_unknown_target_column(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--target", "colour", "--model", "tiny"])
    assert "'colour'" in msg and "species" in msg and "pick one of" in msg


def test_unknown_feature_column(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--features", "petal length,petal colour",
                                  "--model", "tiny"])
    assert "'petal colour'" in msg


def test_target_with_one_class(capsys, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,label\n" + "".join(f"{i},yes\n" for i in range(10)))
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "one class" in msg and "'yes'" in msg and "pick another target" in msg


def test_target_all_missing(capsys, tmp_path):
    path = tmp_path / "nolabels.csv"
    path.write_text("x,label\n" + "".join(f"{i},\n" for i in range(10)))
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "no values" in msg and "pick another target" in msg


def test_regression_on_text_target(capsys, tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(10)))
    msg = one_error_line(capsys, ["run", "--data", path, "--task", "regression", "--model", "tiny"])
    assert "not numeric" in msg and "classification" in msg


def test_prompt_longer_than_the_context(capsys, tmp_path):
    path = tmp_path / "long.csv"  # ~600 GPT-2 tokens per row; tiny reads at most 512
    path.write_text("text,label\n" + "".join(f"{'word ' * 600},{'ab'[i % 2]}\n" for i in range(10)))
    msg = one_error_line(capsys, ["run", "--data", path, "--model", "tiny"])
    assert "at most 512" in msg and "fewer features" in msg
    assert no_runs_recorded()


# ------------------------------------------------------------------------------- run: the settings


def test_verbalizer_not_json(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--verbalizer", "{setosa: s}"])
    assert "--verbalizer" in msg and "not valid JSON" in msg


def test_verbalizer_not_an_object(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--verbalizer", '["s", "v"]'])
    assert "--verbalizer" in msg and "JSON object" in msg


def test_verbalizer_giving_two_classes_one_answer(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny",
                                  "--verbalizer", '{"setosa": "a", "versicolor": "a"}'])
    assert "both answer" in msg


def test_bad_training_setting(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--epochs", "0"])
    assert "epochs must be 'auto' or a whole number of at least 1" in msg


def test_a_pair_method_on_a_regression_target(capsys):
    msg = one_error_line(capsys, ["run", "--data", "diabetes", "--model", "tiny", "--method", "ltuning-prompt"])
    assert "classification only" in msg and "--method lift" not in msg and no_runs_recorded()


def test_template_naming_an_unknown_column(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--template", "{colour} is"])
    assert "'colour'" in msg and "placeholders" in msg


def test_unknown_model(capsys):
    # conftest sets HF_HUB_OFFLINE, so this fails at once instead of retrying the hub
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "no-such-org/no-such-model"])
    assert "could not load model" in msg and "tiny" in msg
    assert no_runs_recorded()


def test_negative_precision(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--precision", "-1"])
    assert "precision must be between 0 and 12" in msg


def test_out_that_is_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--out", tmp_path / "taken"])
    assert "is a file" in msg
    assert no_runs_recorded()


def test_a_checkpoint_folder_of_another_run_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--checkpoint-dir", tmp_path / "taken"])
    assert "is a file" in msg
    open_checkpoints(RunRequest(data="iris", seed=0), tmp_path / "ckpt")  # a killed run left it
    (tmp_path / "ckpt" / "checkpoint-7").mkdir()
    (tmp_path / "ckpt" / "checkpoint-7" / STATE_FILE).write_text("{}")
    msg = one_error_line(capsys, ["run", "--data", "iris", "--seed", "3", "--checkpoint-dir", tmp_path / "ckpt"])
    assert "another run" in msg and "seed" in msg
    assert no_runs_recorded()


def test_missing_local_model_folder_says_so(capsys, tmp_path):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", str(tmp_path / "no" / "model")])
    assert "no model folder at" in msg


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="4-bit is valid where CUDA is")
def test_4bit_without_cuda(capsys):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--quantization", "4bit"])
    assert "CUDA" in msg
    assert no_runs_recorded()


def test_epochs_take_auto_or_a_whole_number():
    from lift_core.cli import _parser, _request

    assert _request(_parser().parse_args(["run", "--data", "iris", "--epochs", "auto"])).lift.train.epochs == "auto"
    assert _request(_parser().parse_args(["run", "--data", "iris", "--epochs", "20"])).lift.train.epochs == 20
    assert _request(_parser().parse_args(["run", "--data", "iris"])).lift.train.epochs == "auto"


def test_argparse_errors_follow_the_same_contract(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--data", "iris", "--epochs", "three"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


# ------------------------------------------------------------------------------- predict


def test_out_inside_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", "--out", tmp_path / "taken" / "results"])
    assert f"{tmp_path / 'taken'} is a file, so nothing can be made inside it" in msg
    assert no_runs_recorded()


@pytest.mark.parametrize("flags,message", [
    (["--seed", "-1"], "seed must be a whole number from 0 to 4294967295"),
    (["--seed", str(2**32)], "seed must be a whole number"),
    (["--lr", "0.6"], "learning rate must be 'auto' or a number from 1e-06 to 0.5"),
])
def test_values_the_app_could_not_show_are_refused(capsys, flags, message):
    msg = one_error_line(capsys, ["run", "--data", "iris", "--model", "tiny", *flags])
    assert message in msg
    assert no_runs_recorded()


def test_predict_out_inside_a_file_is_refused_before_predicting(capsys, tmp_path, rows_csv):
    (tmp_path / "taken").write_text("x")
    msg = one_error_line(capsys, ["predict", "--adapter", tmp_path / "adapter.zip", "--data", rows_csv,
                                  "--out", tmp_path / "taken" / "preds.csv"])
    assert "is a file, so nothing can be made inside it" in msg


def test_predict_missing_adapter(capsys, tmp_path, rows_csv):
    msg = one_error_line(capsys, ["predict", "--adapter", tmp_path / "adapter.zip", "--data", rows_csv,
                                  "--out", tmp_path / "preds.csv"])
    assert "adapter.zip" in msg and "adapter" in msg
    assert not (tmp_path / "preds.csv").exists()


def test_predict_zip_with_a_path_escape(capsys, tmp_path, rows_csv):
    evil = f"evil-{uuid.uuid4().hex}.json"
    bundle = tmp_path / "adapter.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr(f"../{evil}", "{}")
        zf.writestr("manifest.json", '{"format_version": 1, "base_model": "tiny"}')
        zf.writestr("adapter/adapter_config.json", "{}")
    msg = one_error_line(capsys, ["predict", "--adapter", bundle, "--data", rows_csv,
                                  "--out", tmp_path / "preds.csv"])
    assert "unsafe" in msg and evil in msg
    assert not (tmp_path / "preds.csv").exists()
    import tempfile

    assert not (Path(tempfile.gettempdir()) / evil).exists()
    assert not (tmp_path.parent / evil).exists()


def test_predict_zip_without_an_adapter(capsys, tmp_path, rows_csv):
    bundle = tmp_path / "notes.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("manifest.json", '{"format_version": 1, "base_model": "tiny"}')
    msg = one_error_line(capsys, ["predict", "--adapter", bundle, "--data", rows_csv,
                                  "--out", tmp_path / "preds.csv"])
    assert "no adapter" in msg


def test_predict_file_that_is_not_a_zip(capsys, tmp_path, rows_csv):
    bundle = tmp_path / "adapter.zip"
    bundle.write_text("not a zip")
    msg = one_error_line(capsys, ["predict", "--adapter", bundle, "--data", rows_csv,
                                  "--out", tmp_path / "preds.csv"])
    assert "not a zip" in msg


def test_predict_missing_data(capsys, tmp_path):
    msg = one_error_line(capsys, ["predict", "--adapter", tmp_path / "adapter.zip",
                                  "--data", tmp_path / "rows.csv", "--out", tmp_path / "preds.csv"])
    assert "rows.csv" in msg


# ------------------------------------------------------------------------------- the real entry point


def test_entry_point_exit_status_and_stderr(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "lift_core", "run", "--data", str(tmp_path / "nowhere.csv"), "--model", "tiny"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "check the path" in lines[0], proc.stderr
    assert proc.stdout == ""


def test_a_method_run_trains_evaluates_exports_and_predicts(capsys, tmp_path, rows_csv):
    """``--method ltuning-prefix`` end to end on tiny: the table names the method, the metrics
    carry its trained parameter count, and its adapter zip predicts new rows."""
    import json

    code = main(["run", "--data", "iris", "--model", "tiny", "--method", "ltuning-prefix", "--epochs", "1",
                 "--virtual-tokens", "2", "--out", str(tmp_path / "out")])
    out, _ = capsys.readouterr()
    assert code == 0 and "L-Tuning prefix" in out and "Logistic regression" in out
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["method"] == "ltuning-prefix" and doc["models"]["lift"]["trainable_parameters"] > 0
    assert RunStore().list_runs()[0]["method"] == "ltuning-prefix"
    code = main(["predict", "--adapter", str(tmp_path / "out" / "adapter.zip"), "--data", str(rows_csv),
                 "--out", str(tmp_path / "pred.csv")])
    assert code == 0 and len((tmp_path / "pred.csv").read_text().splitlines()) == 3


def test_a_learning_rate_that_is_not_a_number_or_auto(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--data", "iris", "--lr", "fast"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "'fast' is not a number or 'auto'" in lines[0]


@pytest.mark.parametrize("given, kept", [("auto", "auto"), ("5e-4", 5e-4)])
def test_lr_takes_auto_or_a_number(given, kept):
    assert _request(_parser().parse_args(["run", "--data", "iris", "--lr", given])).lift.train.learning_rate == kept


def test_carry_on_trains_a_crashed_run_here_to_the_end(capsys, crashed_copy, tmp_path):
    workspace, run_id, step = crashed_copy
    assert main(["carry-on", run_id, "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    assert "LIFT" in printed.out and f"run {run_id}: files in" in printed.out
    run = RunStore(workspace).get(run_id)
    assert run["status"] == "succeeded" and run["pid"] == os.getpid()
    assert run["metrics"]["models"]["lift"]["resumed_at_steps"] == [step]
    assert (tmp_path / "out" / "adapter.zip").is_file()


def test_carry_on_of_a_run_that_cannot_says_why(capsys, crashed_copy, tmp_path):
    workspace, run_id, _ = crashed_copy
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_error_line(capsys, ["carry-on", run_id, "--out", tmp_path / "file"])
    assert RunStore(workspace).get(run_id)["status"] == "failed"  # refused before it was reopened
    assert "no run 'nope'" in one_error_line(capsys, ["carry-on", "nope"])


def test_a_lift_run_keeps_its_checkpoints_in_its_own_folder_by_default(capsys, monkeypatch):
    """So a killed ``run`` can be carried on with ``carry-on RUN_ID`` (here the clean-up at the end
    is switched off to see them)."""
    from lift_core import experiment
    from lift_core.jobs import CHECKPOINTS
    from lift_core.training import latest_checkpoint

    monkeypatch.setattr(experiment, "clear_checkpoints", lambda folder: None)
    assert main(["run", "--data", "iris", "--model", "tiny", "--epochs", "1", "--no-baselines"]) == 0
    [run] = RunStore().list_runs()
    assert run["pid"] == os.getpid()  # claimed as it was recorded: no page's queue starts it too
    assert latest_checkpoint(RunStore().run_dir(run["id"]) / CHECKPOINTS) is not None


def test_a_run_of_few_optimizer_steps_says_so_before_it_trains(capsys):
    assert main(["run", "--data", "iris", "--model", "tiny", "--epochs", "1", "--no-baselines"]) == 0
    log = capsys.readouterr().err  # the run's log lines, as the page's log shows them
    note = log.index("note: 96 training rows in batches of 4 make only 24 optimizer steps in 1 epoch,")
    assert note < log.index("LIFT: training on") and "Automatic epochs would train 8" in log


def test_ctrl_c_stops_a_run_after_its_step_and_keeps_it_to_carry_on(capsys, monkeypatch):
    """The first Ctrl-C is a Stop, not a crash: the step in progress ends, is kept, and the command
    says how to carry on; the handler is put back afterwards."""
    from lift_core import cli
    from lift_core.jobs import CHECKPOINTS
    from lift_core.training import checkpoint_step, latest_checkpoint

    shown = cli._Bar.__call__

    def press_ctrl_c_at_step_3(bar, event):
        shown(bar, event)
        if event["kind"] == "train" and event["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli._Bar, "__call__", press_ctrl_c_at_step_3)
    before = signal.getsignal(signal.SIGINT)
    argv = ["run", "--data", "iris", "--model", "tiny", "--epochs", "2", "--batch-size", "1", "--no-baselines"]
    assert main(argv) == 3
    [run] = RunStore().list_runs()
    err = capsys.readouterr().err
    assert "Ctrl-C again to quit at once" in err and f"carry it on with python -m lift_core carry-on {run['id']}" in err
    assert run["status"] == "cancelled" and signal.getsignal(signal.SIGINT) is before
    kept = latest_checkpoint(RunStore().run_dir(run["id"]) / CHECKPOINTS)
    assert kept is not None and checkpoint_step(kept) == 4  # seen at step 4's end, which was saved
    assert "checkpoint at step 4 is kept" in err


def test_the_bar_shows_the_stages_even_without_a_training_step(capsys):
    """A run carried on from its last step trains no step: its test and baselines still show."""
    from lift_core import cli

    bar = cli._Bar()
    bar({"kind": "stage", "stage": "test", "done": 8, "total": 30})
    bar({"kind": "stage", "stage": "baselines", "done": 0, "total": 8, "baseline": "Majority class"})
    bar.close()
    err = capsys.readouterr().err
    assert "test: 8/30 rows" in err and "fitting Majority class (1/8)" in err
