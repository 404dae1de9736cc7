"""Home: LIFT in short, the five steps, and "Try it on iris" submitting a default iris run."""

from streamlit.testing.v1 import AppTest

from lift_core import jobs
from lift_core.config import LiftConfig
from lift_core.errors import LiftError
from lift_core.progress import RUN_STATE_KEY
from lift_core.store import RunStore


def home() -> AppTest:
    return AppTest.from_file("../app.py", default_timeout=120)


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [link.proto.label for link in at.get("page_link")]
    return "\n".join(parts)


def test_home_explains_lift_and_lists_the_five_steps():
    at = home().run()
    assert not at.exception
    assert at.title[0].value == "LIFT Studio"
    text = text_of(at)
    assert "Language-Interfaced Fine-Tuning" in text and "LoRA" in text
    for number, step in enumerate(["Data", "Prompts", "Train", "Results", "Predict"], start=1):
        assert f"{number}. {step}" in text
    train_links = [link for link in at.get("page_link") if link.proto.label == "3. Train"]
    assert len(train_links) == 1  # the Train page exists, so it is a link
    assert at.button(key="try_iris").label == "Try it on iris"


def test_try_it_on_iris_submits_the_default_run_and_opens_it_on_train(monkeypatch):
    submitted = []

    def fake_submit(request, store=None, name=None):
        """Record the run as the real submit does, without starting a (slow, bundled) worker."""
        submitted.append(request)
        return (store or RunStore()).create_run({"request": request.to_dict()}, name="iris · bundled",
                                                dataset=request.data, model=request.lift.model)

    monkeypatch.setattr(jobs, "submit", fake_submit)
    monkeypatch.setattr(jobs, "dispatch", lambda store=None: None)  # the Train page polls it
    at = home().run()
    at.button(key="try_iris").click().run()
    try:
        assert not at.exception
        assert len(submitted) == 1
        request = submitted[0]
        assert request.data == "iris" and request.lift == LiftConfig()  # every default: the bundled model
        run_id = RunStore().list_runs()[0]["id"]
        assert at.session_state[RUN_STATE_KEY] == run_id
        assert at.query_params["run"] == run_id
        assert at.title[0].value == "Train"  # switched to the Train page, showing this run
        assert any(run_id in h.value for h in at.subheader)
        assert any(i.value.startswith("Queued") for i in at.info)
    finally:
        for run in RunStore().list_runs():
            jobs.stop(run["id"])


def test_a_refused_iris_run_shows_the_reason_and_stays_home(monkeypatch):
    def refuse(request, store=None, name=None):
        raise LiftError("the bundled model is not installed; run the README's install command")

    monkeypatch.setattr(jobs, "submit", refuse)
    at = home().run()
    at.button(key="try_iris").click().run()
    assert not at.exception
    assert "bundled model is not installed" in at.error[0].value
    assert at.title[0].value == "LIFT Studio"
    assert RunStore().list_runs() == []
