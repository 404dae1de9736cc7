"""The Runs page: the table of runs, opening one, deleting one with confirmation."""


import pytest

from lift_core.store import RunStore
from apptest_pages import open_page

PAGE = "pages/6_Runs.py"


def _page(run_id=None):
    return open_page(PAGE, run_id, timeout=60)


def test_empty_store_shows_a_hint():
    at = _page()
    assert not at.dataframe
    assert "No runs yet" in at.info[0].value


def test_lists_the_finished_run_with_its_accuracy(finished_run, monkeypatch):
    workspace, run_id = finished_run
    monkeypatch.setenv("LIFT_HOME", str(workspace))
    accuracy = RunStore(workspace).get(run_id)["metrics"]["models"]["lift"]["accuracy"]
    at = _page()
    table = at.dataframe[0].value
    row = table.set_index("id").loc[run_id]
    assert (row["status"], row["data set"], row["model"], row["method"]) == ("succeeded", "iris", "tiny", "lift")
    assert row["metric"] == "accuracy" and row["value"] == pytest.approx(accuracy)
    assert row["duration (s)"] > 0
    assert at.selectbox[0].value == run_id
    assert not at.warning  # it succeeded: no error to show


def test_delete_asks_first_then_removes_the_run(finished_run, finished_copy):
    workspace, run_id = finished_copy
    source, _ = finished_run
    at = _page(run_id)

    [delete] = [b for b in at.button if b.label == "Delete…"]
    delete.click()
    at.run()
    assert not at.exception
    assert "cannot be undone" in at.warning[0].value
    assert RunStore(workspace).get(run_id) is not None  # nothing deleted before confirming

    [cancel] = [b for b in at.button if b.label == "Cancel"]
    cancel.click()
    at.run()
    assert not at.warning and RunStore(workspace).get(run_id) is not None

    confirm_delete(at)
    assert not at.exception and not at.error
    assert RunStore(workspace).get(run_id) is None
    assert not (workspace / "runs" / run_id).exists()
    assert f"Deleted run {run_id}." in at.success[0].value
    assert "No runs yet" in at.info[0].value
    assert RunStore(source).get(run_id) is not None  # the shared fixture is untouched


def test_a_click_on_a_run_deleted_in_another_tab_acts_on_no_other_run():
    """Tab B shows run X; tab A deletes it; B's click on X's Delete… must not ask to delete the
    newest run, which B now falls back to showing."""
    store = RunStore()
    x = store.create_run({}, name="older", dataset="iris", model="tiny", method="lift")
    store.finish(x, "failed", error="boom")
    newest = store.create_run({}, name="newer", dataset="iris", model="tiny", method="lift")
    store.finish(newest, "failed", error="boom")
    at = _page(x)
    assert at.selectbox[0].value == x
    store.delete(x)  # in another tab
    [delete] = [b for b in at.button if b.label == "Delete…"]
    delete.click()
    at.run()
    assert not at.exception
    assert at.selectbox[0].value == newest
    warnings = [w.value for w in at.warning]
    assert any(f"Run {x} is no longer in the workspace" in w for w in warnings)
    assert not any("cannot be undone" in w for w in warnings)  # no delete of the newest run offered


def confirm_delete(at) -> None:
    """Click Delete… and then Yes, delete it, as a person would."""
    [delete] = [b for b in at.button if b.label == "Delete…"]
    delete.click()
    at.run()
    [yes] = [b for b in at.button if b.label == "Yes, delete it"]
    yes.click()
    at.run()


def test_delete_of_a_running_run_is_refused(tmp_path, monkeypatch):
    import os

    store = RunStore()
    run_id = store.create_run({}, name="busy", dataset="iris", model="tiny", method="lift")
    store.mark_running(run_id, os.getpid())  # this test process stands in for a worker
    at = _page(run_id)
    confirm_delete(at)
    assert not at.exception
    assert "still running" in at.error[0].value
    assert store.get(run_id)["status"] == "running"


def test_run_again_submits_the_same_settings_and_opens_train(finished_copy):
    from lift_core.jobs import stop

    workspace, run_id = finished_copy
    at = _page(run_id)
    [again] = [b for b in at.button if b.label == "Run again with the same settings"]
    again.click()
    at.run()
    store = RunStore(workspace)
    new = [r for r in store.list_runs() if r["id"] != run_id]
    try:
        assert len(new) == 1
        assert new[0]["config"]["request"] == store.get(run_id)["config"]["request"]
        assert at.query_params["run"] == new[0]["id"]
        assert at.title[0].value == "Train"  # Train opened on the new run
        assert not at.exception
    finally:
        for run in new:
            stop(run["id"], store)


def test_a_crashed_run_carries_on_from_its_checkpoint_and_opens_train(crashed_copy):
    from lift_core.jobs import wait

    workspace, run_id, step = crashed_copy
    at = _page(run_id)
    [carry] = [b for b in at.button if b.label == f"Carry on from step {step}"]
    carry.click()
    at.run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Train" and at.query_params["run"] == run_id
    run = wait(run_id, RunStore(workspace), timeout_s=300)
    assert run["status"] == "succeeded" and run["metrics"]["models"]["lift"]["resumed_at_steps"] == [step]


def test_a_finished_run_offers_no_carry_on_even_with_checkpoints_left(finished_copy):
    from lift_core.training import STATE_FILE

    workspace, run_id = finished_copy
    left = workspace / "runs" / run_id / "checkpoints" / "checkpoint-12"  # say, a clean-up cut short
    left.mkdir(parents=True)
    (left / STATE_FILE).write_text("{}")
    at = _page(run_id)
    assert not any(b.label.startswith("Carry on") for b in at.button)
    assert any("checkpoints take" in c.value for c in at.caption)
    [discard] = [b for b in at.button if b.label == "Discard its checkpoints"]
    discard.click()
    at.run()
    assert not at.exception and not left.exists()
    assert f"Discarded the checkpoints of run {run_id}." in at.success[0].value
    assert RunStore(workspace).get(run_id)["status"] == "succeeded"
