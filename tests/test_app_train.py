"""Train: settings from the draft, Start runs a real worker, and the URL re-attaches to the run."""

import os

from streamlit.testing.v1 import AppTest

from lift_core import jobs
from lift_core.config import LiftConfig
from lift_core.experiment import RunRequest
from lift_core.store import ACTIVE, RunStore


def train_page(run_id: str | None = None) -> AppTest:
    """The Train page as the app serves it (its links resolve against app.py's folder)."""
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    if run_id is not None:
        at.query_params["run"] = run_id
    return at.switch_page("pages/3_Train.py").run()


def stop_all() -> None:
    for run in RunStore().list_runs():
        if run["status"] in ACTIVE:
            jobs.stop(run["id"])


def test_the_page_shows_the_draft_device_and_default_settings():
    at = train_page()
    assert not at.exception
    assert at.title[0].value == "Train"
    defaults = LiftConfig()
    assert at.radio(key="model_kind").value == "bundled"
    assert defaults.train.epochs == "auto" and at.checkbox(key="epochs_auto").value
    assert any("8 epochs for 96 training rows at batch 4" in c.value for c in at.caption)  # iris: 192 steps in 8
    assert not any(n.key == "setting_epochs" for n in at.number_input)
    assert defaults.train.learning_rate == "auto" and at.checkbox(key="learning_rate_auto").value
    assert any("2.0e-03 for 96 training rows at batch 4" in c.value for c in at.caption)  # iris: 24 steps an epoch
    assert at.number_input(key="setting_r").value == defaults.lora.r
    assert any("iris" in m.value for m in at.markdown)
    assert any("4-bit QLoRA" in i.value for i in at.info)
    estimate = next(m for m in at.metric if m.label == "Memory estimate")
    assert "LoRA with Adam" in estimate.proto.help
    assert at.button(key="start").label == "Start training"


def test_the_memory_estimate_follows_a_setting_in_the_same_rerun():
    at = train_page()
    before = next(m for m in at.metric if m.label == "Memory estimate").value
    at.number_input(key="setting_batch_size").set_value(64).run()
    estimate = next(m for m in at.metric if m.label == "Memory estimate")
    assert estimate.value != before and "batches of 64 ×" in estimate.proto.help


def test_epochs_set_by_hand_start_from_the_automatic_ones_and_too_few_steps_are_pointed_out():
    at = train_page()  # iris: 96 training rows, 24 steps an epoch at batch 4
    assert not any("optimizer steps" in i.value for i in at.info)  # automatic: 8 epochs, 192 steps
    at.checkbox(key="epochs_auto").uncheck().run()
    assert at.number_input(key="setting_epochs").value == 8  # what automatic gave
    assert "Default: auto." in at.number_input(key="setting_epochs").help
    at.number_input(key="setting_epochs").set_value(2).run()
    [advice] = [i.value for i in at.info if "optimizer steps" in i.value]
    assert "only 48 optimizer steps in 2 epochs" in advice and "Automatic epochs would train 8" in advice


def test_settings_survive_a_visit_to_another_page():
    at = train_page()
    at.radio(key="model_kind").set_value("tiny").run()
    at.checkbox(key="epochs_auto").uncheck().run()
    at.number_input(key="setting_epochs").set_value(3).run()
    at.checkbox(key="learning_rate_auto").uncheck().run()
    assert at.number_input(key="setting_learning_rate").value == 2e-3  # starts from what automatic gave
    at.number_input(key="setting_learning_rate").set_value(5e-4).run()
    at.switch_page("app.py").run()
    assert at.title[0].value == "LIFT Studio"
    at.switch_page("pages/3_Train.py").run()
    assert not at.exception
    assert at.radio(key="model_kind").value == "tiny"
    assert at.number_input(key="setting_epochs").value == 3
    assert not at.checkbox(key="learning_rate_auto").value
    assert at.number_input(key="setting_learning_rate").value == 5e-4


def test_start_with_tiny_trains_in_a_worker_and_a_reload_reattaches():
    at = train_page()
    at.radio(key="model_kind").set_value("tiny").run()
    at.checkbox(key="epochs_auto").uncheck().run()
    at.number_input(key="setting_epochs").set_value(1).run()
    at.button(key="start").click().run()
    try:
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        run_id = at.query_params["run"]
        store = RunStore()
        request = store.get(run_id)["config"]["request"]
        assert request["lift"]["model"] == "tiny" and request["lift"]["train"]["epochs"] == 1
        assert any(run_id in h.value for h in at.subheader)  # the run panel shows it at once
        done = jobs.wait(run_id, store, timeout_s=300)
        assert done["status"] == "succeeded", (done["error"], store.log_tail(run_id))

        again = train_page(run_id)  # a reload or a new tab: only the URL names the run
        assert not again.exception
        assert any(s.value.startswith("Finished") for s in again.success)
        assert len(again.get("plotly_chart")) == 2  # training loss and validation curves
        assert not any(b.key == "stop_run" for b in again.button)
    finally:
        stop_all()


def test_a_double_click_is_one_run():
    at = train_page()
    at.radio(key="model_kind").set_value("tiny").run()
    at.checkbox(key="epochs_auto").uncheck().run()
    at.number_input(key="setting_epochs").set_value(50).run()
    try:
        at.button(key="start").click().run()
        first = at.query_params["run"]
        at.button(key="start").click().run()
        assert at.query_params["run"] == first
        assert len(RunStore().list_runs()) == 1
        at.button(key="stop_run").click().run()
        assert not at.exception
        assert RunStore().get(first)["status"] == "cancelled"
        assert any(w.value.startswith("Cancelled") for w in at.warning)
    finally:
        stop_all()


def test_a_bad_hub_id_is_an_error_in_the_page_not_an_exception():
    at = train_page()
    at.radio(key="model_kind").set_value("other").run()
    at.text_input(key="model_ref").input("nobody/no-such-model").run()
    assert not at.exception
    assert any("could not load model 'nobody/no-such-model'" in e.value for e in at.error)
    at.button(key="start").click().run()
    assert not at.exception
    assert any(e.value.startswith("Cannot start:") for e in at.error)
    assert RunStore().list_runs() == []


def test_a_link_to_a_run_that_is_not_here_says_so_and_offers_a_new_run():
    at = train_page("20250101-000000-dead")
    assert not at.exception
    assert "no run '20250101-000000-dead'" in at.warning[0].value
    assert "run" not in at.query_params
    assert at.button(key="start").label == "Start training"


def test_a_pair_method_shows_its_own_settings_and_runs_in_a_worker():
    at = train_page()
    assert at.radio(key="method").value == "lift"
    at.radio(key="method").set_value("ltuning-prompt").run()
    assert not at.exception
    assert at.number_input(key="setting_virtual_tokens").value == LiftConfig().pair.virtual_tokens
    assert not [n for n in at.number_input if n.key == "setting_r"]  # LoRA settings belong to LIFT
    at.radio(key="model_kind").set_value("tiny").run()
    estimate = next(m for m in at.metric if m.label == "Memory estimate")
    assert "trained parts with Adam" in estimate.proto.help and "LoRA" not in estimate.proto.help
    at.checkbox(key="epochs_auto").uncheck().run()
    at.number_input(key="setting_epochs").set_value(1).run()
    at.button(key="start").click().run()
    try:
        assert not at.exception, at.exception
        run = RunStore().list_runs()[0]
        assert run["method"] == "ltuning-prompt"
        assert jobs.wait(run["id"], timeout_s=180)["status"] == "succeeded"
    finally:
        stop_all()


def test_a_crashed_run_says_it_can_carry_on_and_does(crashed_copy):
    workspace, run_id, step = crashed_copy
    at = train_page(run_id)
    assert not at.exception
    assert any(f"checkpoint at step {step} is kept" in e.value for e in at.error)
    try:
        at.button(key="carry_on_run").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        store = RunStore(workspace)
        assert store.get(run_id)["status"] in ACTIVE
        assert not any(b.key == "carry_on_run" for b in at.button)  # it is going again: no second offer
        done = jobs.wait(run_id, store, timeout_s=300)
        assert done["status"] == "succeeded", (done["error"], store.log_tail(run_id))
    finally:
        stop_all()


def test_a_run_validating_shows_a_second_bar_saying_how_far_it_is():
    """Between training steps (here: epoch 1's validation) the panel shows the stage's own bar."""
    store = RunStore()
    run_id = store.create_run({"request": RunRequest(data="iris", lift=LiftConfig(model="tiny")).to_dict()})
    store.mark_running(run_id, os.getpid())  # a live process: the page does not reap it as crashed
    store.add_event(run_id, "train", step=5, epoch=1.0, total_steps=10, loss=0.5, learning_rate=1e-3,
                    tokens_per_s=100.0, elapsed_s=5.0, eta_s=5.0)
    store.add_event(run_id, "stage", stage="validation", done=8, total=24)
    try:
        at = train_page(run_id)
        assert not at.exception, at.exception
        bars = {p.proto.text: p.proto.value for p in at.get("progress")}
        assert bars["Validating after epoch 1: 8 of 24 validation rows read …"] == 33
        assert any(text.startswith("50% of the training steps") for text in bars)
    finally:
        store.finish(run_id, "cancelled")
