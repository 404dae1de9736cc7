import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own run store; converted models stay in the shared cache."""
    monkeypatch.setenv("LIFT_HOME", str(tmp_path / "workspace"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    yield


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def finished_copy(finished_run, tmp_path, monkeypatch):
    """A writable copy of ``finished_run``'s workspace, with LIFT_HOME pointing at it: ``(workspace, run_id)``."""
    import shutil

    source, run_id = finished_run
    copy = tmp_path / "finished-copy"
    shutil.copytree(source, copy)
    monkeypatch.setenv("LIFT_HOME", str(copy))
    return copy, run_id


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished LIFT run on iris with the tiny model and every baseline, in its own workspace.

    Returns ``(workspace, run_id)``. Tests that read it point LIFT_HOME at ``workspace``
    (``monkeypatch.setenv("LIFT_HOME", str(workspace))``) and must not modify it.
    """
    from lift_core.config import LiftConfig, LoraSettings, TrainSettings
    from lift_core.experiment import RunRequest, run_and_record
    from lift_core.store import RunStore

    workspace = tmp_path_factory.mktemp("finished-run")
    store = RunStore(workspace)
    cfg = LiftConfig(model="tiny", lora=LoraSettings(r=4, alpha=8),
                     train=TrainSettings(epochs=2, batch_size=8, bf16_cpu=False))
    request = RunRequest(data="iris", lift=cfg)
    run_id = store.create_run({"request": request.to_dict()}, name="iris · tiny", dataset="iris",
                              model="tiny", method="lift")
    run_and_record(request, store, run_id, say=lambda s: None)
    return workspace, run_id


class _Crash(Exception):
    """Stands in for a training process that dies part-way."""


@pytest.fixture(scope="session")
def crashed_run(tmp_path_factory):
    """A LIFT run on iris with the tiny model that crashed early in epoch 2, after its epoch-1
    checkpoint: ``(workspace, run_id, step)`` with the checkpoint's step. Read-only: copy it."""
    from lift_core.config import LiftConfig, LoraSettings, TrainSettings
    from lift_core.experiment import RunRequest, run_and_record
    from lift_core.jobs import checkpoint_folder, request_key
    from lift_core.store import RunStore
    from lift_core.training import checkpoint_step, latest_checkpoint

    workspace = tmp_path_factory.mktemp("crashed-run")
    store = RunStore(workspace)
    cfg = LiftConfig(model="tiny", lora=LoraSettings(r=4, alpha=8),
                     train=TrainSettings(epochs=3, batch_size=8, bf16_cpu=False))
    request = RunRequest(data="iris", baselines=False, lift=cfg)
    run_id = store.create_run({"request": request.to_dict(), "request_key": request_key(request)},
                              name="iris · tiny", dataset="iris", model="tiny", method="lift")

    def crash_in_epoch_2(event: dict) -> None:
        if event["kind"] == "train" and event["epoch"] > 1.2:
            raise _Crash("killed")

    with pytest.raises(_Crash):
        run_and_record(request, store, run_id, say=lambda s: None, on_event=crash_in_epoch_2,
                       checkpoint_dir=checkpoint_folder(store, run_id, request))
    assert store.get(run_id)["status"] == "failed"
    return workspace, run_id, checkpoint_step(latest_checkpoint(checkpoint_folder(store, run_id, request)))


@pytest.fixture
def crashed_copy(crashed_run, tmp_path, monkeypatch):
    """A writable copy of ``crashed_run``'s workspace, with LIFT_HOME pointing at it."""
    import shutil

    source, run_id, step = crashed_run
    copy = tmp_path / "crashed-copy"
    shutil.copytree(source, copy)
    monkeypatch.setenv("LIFT_HOME", str(copy))
    return copy, run_id, step
