"""The session's draft: a new session that opens a run goes on from that run's settings."""

from lift_core.config import LiftConfig, TrainSettings
from lift_core.draft import DRAFT_KEY, get_draft, resume_draft
from lift_core.experiment import RunRequest


def test_a_fresh_session_opening_a_run_takes_its_settings():
    request = RunRequest(data="wine", seed=2, lift=LiftConfig(model="tiny", train=TrainSettings(epochs=3)))
    run = {"config": {"request": request.to_dict()}}
    state = {}
    draft = resume_draft(state, run)
    assert (draft.data, draft.seed, draft.lift.model, draft.lift.train.epochs) == ("wine", 2, "tiny", 3)


def test_a_session_with_its_own_draft_keeps_it():
    state = {}
    get_draft(state).data = "moons"
    run = {"config": {"request": RunRequest(data="wine").to_dict()}}
    assert resume_draft(state, run).data == "moons"


def test_a_run_without_its_request_leaves_the_defaults():
    state = {}
    assert resume_draft(state, {"config": None}).data == "iris"
    assert DRAFT_KEY in state


def test_a_run_stored_with_a_setting_since_removed_still_resumes():
    request = RunRequest(data="wine", lift=LiftConfig(model="tiny")).to_dict()
    request["lift"]["train"]["max_length"] = None  # as the first versions stored it
    assert resume_draft({}, {"config": {"request": request}}).data == "wine"


def test_a_run_whose_settings_this_version_cannot_read_leaves_the_defaults():
    request = RunRequest(data="wine").to_dict()
    request["lift"]["train"]["from_the_future"] = 1
    assert resume_draft({}, {"config": {"request": request}}).data == "iris"
