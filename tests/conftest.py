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
