"""Uploaded tables are kept in the workspace so a training worker (another process) can read them.

Files are stored by content hash: the same upload twice is one file, and a run's request names a
path that stays valid after the browser tab is gone.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from lift_core.data import read_table
from lift_core.errors import LiftError
from lift_core.store import workspace_dir

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # keep equal to server.maxUploadSize in .streamlit/config.toml


def save_upload(data: bytes, name: str, root: Path | None = None) -> Path:
    """Check that the bytes are a readable table, then keep them; return the stored path."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise LiftError(f"{name} is {len(data) / 1e6:.0f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB — "
                        "upload a sample or fewer columns")
    read_table(data, name=name)  # refuse a bad file now, with the reader's own message
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "table.csv"
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = (root or workspace_dir()) / "uploads" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.exists():
        path.write_bytes(data)
    return path
