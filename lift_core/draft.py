"""The run a user puts together across the pages: one RunRequest kept in the browser session.

Every page reads and updates the same draft, so choices made on Data and Prompts are exactly what
Train submits. Takes any mutable mapping (``st.session_state`` in the app, a dict in tests).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from lift_core.errors import LiftError
from lift_core.experiment import RunRequest

DRAFT_KEY = "lift_draft"


def get_draft(state: MutableMapping) -> RunRequest:
    """The session's draft request; a new session starts from iris with every default."""
    draft = state.get(DRAFT_KEY)
    if not isinstance(draft, RunRequest):
        draft = RunRequest(data="iris")
        state[DRAFT_KEY] = draft
    return draft


def set_draft(state: MutableMapping, request: RunRequest) -> None:
    state[DRAFT_KEY] = request


def resume_draft(state: MutableMapping, run: dict[str, Any] | None) -> RunRequest:
    """A new session (a reload, a new tab) that opens a run goes on from that run's settings."""
    if DRAFT_KEY not in state and run is not None:
        try:
            set_draft(state, request_of_run(run))
        except (KeyError, TypeError, ValueError, LiftError):
            pass  # a run stored without its request, or with settings this version lacks: the defaults
    return get_draft(state)


def request_of_run(run: dict[str, Any]) -> RunRequest:
    """The request a stored run was started with (to re-run it or to open its settings)."""
    return RunRequest.from_dict((run.get("config") or {})["request"])


def start_widget(state: MutableMapping, key: str, value: Any, options: list | tuple | None = None) -> None:
    """Start a widget from the draft: Streamlit drops widget state when the user visits another page."""
    if key not in state or (options is not None and state[key] not in options):
        state[key] = value
