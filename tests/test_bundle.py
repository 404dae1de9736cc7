"""Adapter bundles: a faithful round trip, and every hostile zip refused before touching disk."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lift_core.bundle import FORMAT_VERSION, read_bundle, read_manifest, write_bundle
from lift_core.errors import LiftError

MANIFEST = {
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "template": "Classify: {text}\nAnswer:",
    "verbalizer": {"0": "no", "1": "yes"},
    "features": [{"name": "text", "type": "string"}],
    "task": "classification",
    "classes": ["0", "1"],
    "metrics": {"accuracy": 0.875},
}
CONFIG = json.dumps({"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]})


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "adapter_src"
    folder.mkdir()
    save_file(
        {"base_model.layers.0.lora_A.weight": np.arange(32, dtype=np.float32).reshape(4, 8)},
        str(folder / "adapter_model.safetensors"),
    )
    save_file({"head.weight": np.ones((2, 4), dtype=np.float32)}, str(folder / "head.safetensors"))
    (folder / "adapter_config.json").write_text(CONFIG)
    return folder


def _zip(members: dict[str, bytes], *, manifest: dict | None = None, config: bool = True) -> bytes:
    """A bundle crafted by hand: a valid manifest and config unless told otherwise, plus members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if manifest is not None:
            zf.writestr("manifest.json", json.dumps(manifest))
        if config:
            zf.writestr("adapter/adapter_config.json", CONFIG)
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _valid(members: dict[str, bytes] | None = None) -> bytes:
    return _zip(members or {}, manifest={**MANIFEST, "format_version": FORMAT_VERSION})


def _symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", json.dumps({**MANIFEST, "format_version": 1}))
        zf.writestr("adapter/adapter_config.json", CONFIG)
        link = zipfile.ZipInfo("adapter/weights.safetensors")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buf.getvalue()


def _lying_bomb() -> bytes:
    """A member that declares 100 bytes but inflates to 1 MiB (sizes patched in both headers)."""
    name = b"adapter/notes.txt"
    data = bytearray(_valid({name.decode(): b"\0" * (1 << 20)}))
    local = data.find(name) - 30  # the name follows a 30-byte local header ...
    central = data.find(name, local + 31) - 46  # ... and a 46-byte central directory entry
    assert data[local : local + 4] == b"PK\x03\x04" and data[central : central + 4] == b"PK\x01\x02"
    data[local + 22 : local + 26] = struct.pack("<I", 100)  # uncompressed size, local header
    data[central + 24 : central + 28] = struct.pack("<I", 100)  # and in the central directory
    return bytes(data)


def test_round_trip(tmp_path: Path, adapter_dir: Path) -> None:
    out = write_bundle(tmp_path / "exports" / "model.zip", adapter_dir, MANIFEST, "# My model\n")
    assert out == tmp_path / "exports" / "model.zip" and zipfile.is_zipfile(out)
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [
            "README.md",
            "adapter/adapter_config.json",
            "adapter/adapter_model.safetensors",
            "adapter/head.safetensors",
            "manifest.json",
        ]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind

    dest = tmp_path / "imported"
    manifest = read_bundle(out, dest)
    assert manifest == read_manifest(out) == read_manifest(out.read_bytes())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["created"].endswith("+00:00")
    assert {k: manifest[k] for k in MANIFEST} == MANIFEST
    assert json.loads((dest / "manifest.json").read_text()) == manifest
    assert (dest / "README.md").read_text() == "# My model\n"
    for name in ("adapter_model.safetensors", "head.safetensors", "adapter_config.json"):
        assert (dest / "adapter" / name).read_bytes() == (adapter_dir / name).read_bytes()
    weights = load_file(str(dest / "adapter" / "adapter_model.safetensors"))
    np.testing.assert_array_equal(
        weights["base_model.layers.0.lora_A.weight"], np.arange(32, dtype=np.float32).reshape(4, 8)
    )
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "adapter", "manifest.json"]

    assert read_bundle(out.read_bytes(), tmp_path / "from_bytes") == manifest
    with pytest.raises(LiftError, match="already holds"):
        read_bundle(out, dest)


def test_write_refuses_pickles_and_non_adapters(tmp_path: Path, adapter_dir: Path) -> None:
    (adapter_dir / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(LiftError, match="only safetensors"):
        write_bundle(tmp_path / "a.zip", adapter_dir, MANIFEST, "")
    with pytest.raises(LiftError, match="no adapter_config.json"):
        write_bundle(tmp_path / "b.zip", tmp_path / "missing", MANIFEST, "")
    (adapter_dir / "adapter_model.bin").unlink()
    with pytest.raises(LiftError, match="base_model"):
        write_bundle(tmp_path / "c.zip", adapter_dir, {"task": "classification"}, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_src"]  # no zip, no temp file


REFUSALS: dict[str, tuple[Callable[[], bytes], dict, str]] = {
    "parent traversal": (lambda: _valid({"../evil.json": b"{}"}), {}, "unsafe file name"),
    "nested traversal": (lambda: _valid({"adapter/../../evil.json": b"{}"}), {}, "unsafe"),
    "absolute path": (lambda: _valid({"/abs.json": b"{}"}), {}, "unsafe file name"),
    "backslashes": (lambda: _valid({"adapter\\..\\..\\evil.json": b"{}"}), {}, "unsafe file name"),
    "drive letter": (lambda: _valid({"C:/evil.json": b"{}"}), {}, "unsafe file name"),
    "stray top-level file": (lambda: _valid({"evil.json": b"{}"}), {}, "no place in a LIFT"),
    "symlink": (_symlink_zip, {}, "symbolic link"),
    "pickle": (
        lambda: _valid({"adapter/adapter_model.bin": b"\x80\x04."}),
        {},
        "only safetensors weights are accepted",
    ),
    "other file type": (lambda: _valid({"adapter/run.sh": b"rm -rf /"}), {}, "file type"),
    "declared size over limit": (
        lambda: _valid({"adapter/adapter_model.safetensors": b"x" * 5000}),
        {"max_member_bytes": 4096},
        "over the limit of 4096",
    ),
    "zip bomb": (
        lambda: _valid({"adapter/adapter_model.safetensors": b"\0" * (4 << 20)}),
        {"max_member_bytes": 1 << 20},
        "over the limit",
    ),
    "total over limit": (
        lambda: _valid({f"adapter/w{i}.safetensors": b"\0" * 3000 for i in range(3)}),
        {"max_total_bytes": 8000},
        "in all",
    ),
    "lying zip bomb": (_lying_bomb, {}, "zip bomb|damaged"),
    "too many members": (
        lambda: _valid({f"adapter/extra{i}.json": b"{}" for i in range(10)}),
        {"max_members": 5},
        "at most 5",
    ),
    "missing manifest": (lambda: _zip({}), {}, "no manifest.json"),
    "missing adapter config": (
        lambda: _zip({}, manifest={**MANIFEST, "format_version": 1}, config=False),
        {},
        "no adapter/adapter_config.json",
    ),
    "newer format": (
        lambda: _zip({}, manifest={**MANIFEST, "format_version": FORMAT_VERSION + 1}),
        {},
        "newer LIFT Studio.*upgrade",
    ),
    "no format version": (lambda: _zip({}, manifest=MANIFEST), {}, "not a LIFT Studio bundle"),
    "invalid manifest json": (
        lambda: _zip({"manifest.json": b"{not json"}),
        {},
        "not valid JSON",
    ),
    "not a zip": (lambda: b"this is a CSV, not a zip\n" * 10, {}, "not a zip file"),
    "truncated zip": (lambda: _valid()[:-30], {}, "not a zip file"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_hostile_bundles_are_refused(tmp_path: Path, case: str) -> None:
    make, limits, message = REFUSALS[case]
    data = make()
    root = tmp_path / "jail"
    dest = root / "inner" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(LiftError, match=message):
        read_bundle(data, dest, **limits)
    if case != "lying zip bomb":  # only extracting reveals that lie
        with pytest.raises(LiftError, match=message):
            read_manifest(data, **limits)
    assert sorted(root.rglob("*")) == [root / "inner", dest]  # nothing written, no scratch left
    assert not (tmp_path / "evil.json").exists()


def test_read_from_a_path_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(_valid())
    assert read_manifest(path)["base_model"] == MANIFEST["base_model"]
    assert read_manifest(str(path)) == read_manifest(io.BytesIO(path.read_bytes()))
    with pytest.raises(LiftError, match="does not exist"):
        read_manifest(tmp_path / "nope.zip")
