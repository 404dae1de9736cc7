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
