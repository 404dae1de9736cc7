"""The adapter bundle: one zip that carries a trained adapter from one LIFT Studio to another.

Layout::

    manifest.json   what the adapter is: base_model, template, verbalizer, feature schema,
                    task, classes, metrics, created, format_version
    README.md       a short model card for people
    adapter/...     the adapter folder: lift.json plus either a peft LoRA adapter
                    (adapter_config.json, adapter_model.safetensors) or, for L-Tuning and
                    prefix/prompt tuning, the prefix/prompt and head weights (pair_adapter.safetensors)

Bundles come from strangers, so reading one trusts nothing: member names, file types, sizes
and the decompressed byte counts are all checked, only safetensors weights are accepted (pickles
can run code when loaded), and nothing is ever written outside the destination folder.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union

from lift_core.errors import LiftError

FORMAT_VERSION = 1
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_MEMBERS = 200
MAX_MANIFEST_BYTES = 8 * 1024**2
ALLOWED_SUFFIXES = frozenset({".safetensors", ".json", ".md", ".txt", ".jinja"})
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})

MANIFEST = "manifest.json"
CARD = "README.md"
ADAPTER_DIR = "adapter"
# A LoRA adapter has peft's adapter_config.json; a prefix/prompt-and-head adapter has only lift.json.
ADAPTER_MARKERS = ("adapter_config.json", "lift.json")

BundleSource = Union[str, Path, bytes, bytearray, memoryview, IO[bytes]]

_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_suffix(name: str, where: str) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise LiftError(
            f"{where} holds {name!r}, a pickle file; only safetensors weights are accepted "
            "because pickles can run code when loaded — re-save the adapter with "
            "safe_serialization=True"
        )
    if suffix not in ALLOWED_SUFFIXES:
        raise LiftError(
            f"{where} holds {name!r}, a file type a bundle may not contain; allowed types are "
            f"{', '.join(sorted(ALLOWED_SUFFIXES))}"
        )


def _check_manifest(manifest: Any, where: str) -> dict:
    """A manifest this LIFT Studio can load: a JSON object with a known format and a base model."""
    if not isinstance(manifest, dict):
        raise LiftError(f"{where}: manifest.json must be a JSON object; export the bundle again")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LiftError(
            f"{where}: manifest.json has no valid format_version, so this is not a LIFT Studio "
            "bundle; export the adapter from LIFT Studio's export page"
        )
    if version > FORMAT_VERSION:
        raise LiftError(
            f"{where} was made by a newer LIFT Studio (bundle format {version}, this one reads "
            f"up to {FORMAT_VERSION}); upgrade LIFT Studio to load it"
        )
    if not isinstance(manifest.get("base_model"), str) or not manifest["base_model"]:
        raise LiftError(
            f"{where}: manifest.json does not name its base_model, so the adapter cannot be "
            "loaded; export the bundle again"
        )
    return manifest


def write_bundle(path: Path, adapter_dir: Path, manifest: dict, card: str) -> Path:
    """Zip the adapter folder with its manifest and model card, so it can be shared as one file.

    ``format_version`` is set and ``created`` (ISO 8601, UTC) filled in if missing. The zip is written next to
    ``path`` first and moved into place, so a failed export never leaves half a file.
    """
    path, adapter_dir = Path(path), Path(adapter_dir)
    if not any((adapter_dir / marker).is_file() for marker in ADAPTER_MARKERS):
        raise LiftError(
            f"{adapter_dir} is not an adapter folder (no adapter_config.json or lift.json); "
            "pick the folder a training run saved its adapter to"
        )
    files = sorted(p for p in adapter_dir.rglob("*") if p.is_file())
    where = f"adapter folder {adapter_dir}"
    for file in files:
        _check_suffix(file.relative_to(adapter_dir).as_posix(), where)
    if len(files) + 2 > MAX_MEMBERS:
        raise LiftError(f"{where} has {len(files)} files; a bundle holds at most {MAX_MEMBERS - 2}")
    sizes = [file.stat().st_size for file in files]
    if max(sizes) > MAX_MEMBER_BYTES or sum(sizes) > MAX_TOTAL_BYTES:
        raise LiftError(
            f"{where} is too large for a bundle (files up to {MAX_MEMBER_BYTES} bytes each, "
            f"{MAX_TOTAL_BYTES} in all)"
        )
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    manifest.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _check_manifest(manifest, "the manifest to export")
    try:
        manifest_text = json.dumps(manifest, indent=2, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise LiftError(f"the manifest to export is not JSON-serialisable: {exc}") from exc

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, manifest_text)
            zf.writestr(CARD, card)
            for file in files:
                zf.write(file, f"{ADAPTER_DIR}/{file.relative_to(adapter_dir).as_posix()}")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def _open_zip(source: BundleSource) -> Iterator[tuple[zipfile.ZipFile, str]]:
    """The zip and a name for it in messages; anything that is not a readable zip is a LiftError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        fileobj: Any = io.BytesIO(bytes(source))
        where = "the uploaded bundle"
    elif isinstance(source, (str, Path)):
        fileobj = Path(source)
        where = f"bundle {source}"
        if not fileobj.is_file():
            raise LiftError(f"{where} does not exist; check the path")
    else:
        fileobj = source
        where = f"bundle {getattr(source, 'name', 'upload')}"
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise LiftError(
            f"{where} is not a zip file or is damaged ({exc}); export the adapter again "
            "from LIFT Studio and upload the .zip it produces"
        ) from exc
    with zf:
        yield zf, where


def _check_member_name(name: str, where: str) -> None:
    """Refuse names that could land outside the destination or that a bundle never holds."""
    if (
        "\\" in name
        or "\x00" in name
        or _DRIVE.match(name)
        # an empty part also catches absolute ("/x") and empty names
        or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))
    ):
        raise LiftError(
            f"{where} contains an unsafe file name {name!r} (absolute, '..', or a Windows path); "
            "refusing to extract it — only load bundles exported by LIFT Studio"
        )
    parts = name.rstrip("/").split("/")
    in_adapter = parts[0] == ADAPTER_DIR and (len(parts) > 1 or name.endswith("/"))
    if not (in_adapter or name in (MANIFEST, CARD)):
        raise LiftError(
            f"{where} contains {name!r}, which has no place in a LIFT Studio bundle (expected "
            f"{MANIFEST}, {CARD} and files under {ADAPTER_DIR}/)"
        )


def _checked_members(
    zf: zipfile.ZipFile, where: str, max_member_bytes: int, max_total_bytes: int, max_members: int
) -> list[zipfile.ZipInfo]:
    """The file members to extract, after refusing everything unsafe in the zip's listing."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise LiftError(
            f"{where} has {len(infos)} entries; a bundle may hold at most {max_members}"
        )
    seen: set[str] = set()
    files = []
    total = 0
    for info in infos:
        _check_member_name(info.filename, where)
        if info.filename in seen:
            raise LiftError(f"{where} lists {info.filename!r} twice; export the bundle again")
        seen.add(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise LiftError(f"{where} contains a symbolic link {info.filename!r}; refusing it")
        if info.flag_bits & 0x1:
            raise LiftError(f"{where} contains an encrypted file {info.filename!r}; refusing it")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise LiftError(
                f"{where}: {info.filename!r} uses a compression LIFT Studio does not read "
                "(only stored or deflated); export the bundle again from LIFT Studio"
            )
        if info.is_dir():
            continue
        _check_suffix(info.filename, where)
        if info.file_size > max_member_bytes:
            raise LiftError(
                f"{where}: {info.filename!r} would unpack to {info.file_size} bytes, over the "
                f"limit of {max_member_bytes} per file"
            )
        total += info.file_size
        if total > max_total_bytes:
            raise LiftError(
                f"{where} would unpack to more than the limit of {max_total_bytes} bytes in all"
            )
        files.append(info)
    if MANIFEST not in seen:
        raise LiftError(f"{where} has no {MANIFEST}, so it is not a LIFT Studio bundle")
    if not any(f"{ADAPTER_DIR}/{marker}" in seen for marker in ADAPTER_MARKERS):
        raise LiftError(f"{where} has no {ADAPTER_DIR}/adapter_config.json or {ADAPTER_DIR}/lift.json, "
                        "so it holds no adapter to load")
    return files


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, out: IO[bytes] | None = None
) -> bytes:
    """Decompress one member, stopping as soon as it yields more than its declared size.

    Zip bombs lie about their sizes, so the bytes actually produced are counted (the declared
    size is what the limits were checked against). CPython's zipfile also stops at the declared
    size and then fails the CRC check; the count keeps the guarantee from resting on that.
    Returns the bytes when ``out`` is None, else streams them into ``out`` and returns b"".
    """
    sink = out if out is not None else io.BytesIO()
    count = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                count += len(chunk)
                if count > info.file_size:
                    raise LiftError(
                        f"{where}: {info.filename!r} unpacks to more than its declared "
                        f"{info.file_size} bytes (a zip bomb); refusing it"
                    )
                sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise LiftError(
            f"{where}: {info.filename!r} is damaged ({exc}); export the bundle again"
        ) from exc
    return sink.getvalue() if out is None else b""


def _load_manifest(zf: zipfile.ZipFile, where: str) -> dict:
    info = zf.getinfo(MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise LiftError(
            f"{where}: manifest.json is {info.file_size} bytes, over the {MAX_MANIFEST_BYTES}-byte "
            "limit for a manifest; export the bundle again"
        )
    raw = _read_member(zf, info, where)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LiftError(
            f"{where}: manifest.json is not valid JSON ({exc}); export the bundle again"
        ) from exc
    return _check_manifest(manifest, where)


def read_manifest(
    path_or_bytes: BundleSource,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> dict:
    """What a bundle holds, checked like ``read_bundle`` but without extracting anything."""
    with _open_zip(path_or_bytes) as (zf, where):
        _checked_members(zf, where, max_member_bytes, max_total_bytes, max_members)
        return _load_manifest(zf, where)


def read_bundle(
    path_or_bytes: BundleSource,
    dest: Path,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> dict:
    """Unpack a bundle safely into ``dest`` (adapter under ``dest/adapter/``); return the manifest.

    Everything is checked before anything is written, and the files are unpacked into a scratch
    folder inside ``dest`` that is moved into place only when all of them came out whole.
    """
    dest = Path(dest)
    with _open_zip(path_or_bytes) as (zf, where):
        files = _checked_members(zf, where, max_member_bytes, max_total_bytes, max_members)
        manifest = _load_manifest(zf, where)
        clash = [n for n in (ADAPTER_DIR, MANIFEST, CARD) if (dest / n).exists()]
        if clash:
            raise LiftError(
                f"{dest} already holds {', '.join(clash)}; import into an empty folder "
                "or delete the previous import first"
            )
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        scratch = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
        try:
            for info in files:
                target = (scratch / info.filename).resolve()
                if not target.is_relative_to(scratch):
                    raise LiftError(
                        f"{where}: {info.filename!r} would land outside {dest}; refusing it"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as out:
                    _read_member(zf, info, where, out)
            for name in (ADAPTER_DIR, MANIFEST, CARD):
                if (scratch / name).exists():
                    (scratch / name).rename(root / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return manifest
