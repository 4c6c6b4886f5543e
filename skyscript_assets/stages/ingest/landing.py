"""The landing zone: one folder per drama under an fsspec URL (a local path or s3://...).

Nothing in the landing zone may lead outside it: a symlinked drama folder or episode is
followed only when its target stays inside the landing root (and a drama folder only when
it is not a second name for another drama); otherwise it is refused with a one-line reason.
The same rule holds for the sensor (`scan_landing_zone`), the manifest (`find_drama`,
`build_manifest`) and `skyscript ingest` (`copy_into_landing`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import fsspec
from pydantic import ValidationError

from skyscript_assets.ids import UnsafeIdError, validate_drama_id
from skyscript_assets.schema import DramaInfo, LossRecord
from skyscript_assets.storage import full_uri, is_local, open_fs  # noqa: F401  (re-exported for the landing's users)

DRAMA_INFO_FILE = "drama.json"

# drama.json is a few lines of metadata: anything beyond these bounds is a mistake or an attack.
MAX_DRAMA_JSON_BYTES = 256 * 1024
MAX_DRAMA_JSON_DEPTH = 16
MAX_TITLE_CHARS = 300  # title, language and source are one line each
MAX_TEXT_CHARS = 4000  # any other string (a synopsis, a URL, a key)
_SINGLE_LINE_FIELDS = ("title", "language", "source")
# C0 controls and DEL; tab, newline and carriage return are allowed outside the one-line fields.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


@dataclass(frozen=True)
class DramaFolder:
    drama_id: str
    uri: str  # the folder's URL, protocol included for remote stores
    fingerprint: str  # changes when an episode file is added, removed or rewritten


@dataclass(frozen=True)
class RejectedFolder:
    name: str
    uri: str
    reason: str  # one line, ready for a log or a loss row
    kind: str = (
        "unsafe_drama_id"  # short reason: unsafe_drama_id, symlink_outside_landing, not_a_file, duplicate_drama
    )


class LandingRefusal(ValueError):
    """A landing entry that may not be read; `kind` is a short reason, str() the one-line message."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def real_root(root: str) -> str:
    """The landing root of a local filesystem with every symlink in its path resolved."""
    return os.path.realpath(root)


def is_inside(path: str, root: str) -> bool:
    """True when the (resolved) `path` is `root` or lies below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_local(path: str, landing_real_root: str) -> tuple[str, os.stat_result]:
    """The path to read for a local landing entry, and its stat (links followed).

    A plain entry is returned as it is. A symlink is followed only when its target exists and
    lies inside the landing root; otherwise `LandingRefusal` says why, without touching the target."""
    st = os.lstat(path)
    if not stat.S_ISLNK(st.st_mode):
        return path, st
    destination = printable(os.readlink(path))
    destination = destination if len(destination) <= 200 else destination[:200] + "..."
    try:
        real = os.path.realpath(path, strict=True)
    except OSError:
        raise LandingRefusal("not_a_file", f"a broken symlink or symlink loop (-> {destination})") from None
    if not is_inside(real, landing_real_root):
        raise LandingRefusal(
            "symlink_outside_landing",
            f"a symlink to {destination}, outside the landing zone (links are followed only inside it)",
        )
    return real, os.stat(real)


def scan_landing_zone(url: str) -> tuple[list[DramaFolder], list[RejectedFolder]]:
    """List drama folders under `url`, split into valid ones and rejected names with reasons."""
    fs, root = open_fs(url)
    if not fs.exists(root):
        return [], []
    dramas: list[DramaFolder] = []
    rejected: list[RejectedFolder] = []
    for name, path, refusal in _drama_folders(fs, root):
        if refusal is not None:
            rejected.append(refusal)
        else:
            dramas.append(DramaFolder(name, full_uri(fs, path), _fingerprint(fs, path)))
    return dramas, rejected


def find_drama(url: str, drama_id: str) -> DramaFolder:
    """The landing folder of one drama; the id is validated before it touches a path.

    Raises FileNotFoundError when there is none, `LandingRefusal` (a ValueError) when the
    folder is a symlink the landing zone refuses (the same verdict as the sensor's)."""
    validate_drama_id(drama_id)
    fs, root = open_fs(url)
    path = f"{root}/{drama_id}"
    if not is_local(fs):
        if not fs.isdir(path):
            raise FileNotFoundError(f"drama {drama_id!r} has no folder in the landing zone {url}")
        return DramaFolder(drama_id, full_uri(fs, path), _fingerprint(fs, path))
    if not os.path.lexists(path):
        raise FileNotFoundError(f"drama {drama_id!r} has no folder in the landing zone {url}")
    for name, found, refusal in _drama_folders(fs, root):
        if name != drama_id:
            continue
        if refusal is not None:
            raise LandingRefusal(refusal.kind, refusal.reason)
        return DramaFolder(drama_id, full_uri(fs, found), _fingerprint(fs, found))
    raise FileNotFoundError(f"drama {drama_id!r} has no folder in the landing zone {url} (a file is there)")


def _drama_folders(fs: fsspec.AbstractFileSystem, root: str) -> list[tuple[str, str, RejectedFolder | None]]:
    """(name, path, refusal or None) for every entry of the landing root that is or claims to be a drama folder."""
    entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    out: list[tuple[str, str, RejectedFolder | None]] = []

    def reject(name: str, path: str, kind: str, reason: str) -> None:
        out.append((name, path, RejectedFolder(name=name, uri=full_uri(fs, path), reason=reason, kind=kind)))

    local = is_local(fs)
    landing = real_root(root) if local else root
    candidates: list[tuple[bool, str, str, str]] = []  # (is a link, name, path, real path)
    for entry in entries:
        path = entry["name"].rstrip("/")
        name = path.rsplit("/", 1)[-1]
        is_link = bool(local and entry.get("islink"))
        if not is_link and entry.get("type") != "directory":
            continue  # files beside the drama folders are no dramas
        try:
            validate_drama_id(name)
        except UnsafeIdError as exc:
            reject(name, path, "unsafe_drama_id", str(exc))
            continue
        if not local:
            out.append((name, path, None))
            continue
        if not is_link:
            candidates.append((False, name, path, os.path.realpath(path)))
            continue
        try:
            real, st = resolve_local(path, landing)
        except LandingRefusal as exc:
            reject(name, path, exc.kind, f"drama folder {name!r} is {exc}")
            continue
        except OSError as exc:
            reject(name, path, "not_a_file", f"drama folder {name!r} cannot be read ({exc.strerror or exc})")
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue  # a link to a file is no drama folder, like a file
        if real == landing:
            reject(
                name, path, "symlink_outside_landing", f"drama folder {name!r} is a symlink to the landing zone itself"
            )
            continue
        candidates.append((True, name, path, real))

    # One folder, one drama: a link to a folder that is already read under another id is refused
    # (real folders win over links, then the first name).
    owner: dict[str, str] = {}
    for is_link, name, path, real in sorted(candidates):
        if real in owner:
            reject(
                name,
                path,
                "duplicate_drama",
                f"drama folder {name!r} is a symlink to the folder of drama {owner[real]!r}; "
                "a drama is read once, under one id",
            )
            continue
        owner[real] = name
        out.append((name, path, None))
    return sorted(out, key=lambda item: item[0])


def read_drama_info(
    folder_uri: str, drama_id: str, *, landing_root: str | None = None
) -> tuple[DramaInfo, list[LossRecord]]:
    """drama.json if present; a broken, oversized or unsafe one is a loss and the defaults are used.

    `landing_root` (default: the folder's parent) bounds where a symlinked drama.json may lead."""
    fs, folder = open_fs(folder_uri)
    path = f"{folder}/{DRAMA_INFO_FILE}"
    default = DramaInfo(title=drama_id)

    def loss(message: str) -> tuple[DramaInfo, list[LossRecord]]:
        text = " ".join(message.split())
        text = text if len(text) <= 300 else text[:300] + "..."
        return default, [
            LossRecord(
                stage="drama_manifest",
                item=DRAMA_INFO_FILE,
                reason="invalid_drama_json",
                detail=f"{drama_id}/{DRAMA_INFO_FILE}: ignored, {text}",
            )
        ]

    try:
        if is_local(fs):
            if not os.path.lexists(path):
                return default, []
            root = real_root(landing_root if landing_root is not None else os.path.dirname(folder))
            path, st = resolve_local(path, root)
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever
                return loss("not a regular file")
            size = st.st_size
        else:
            if not fs.exists(path):
                return default, []
            size = int(fs.size(path) or 0)
        if size > MAX_DRAMA_JSON_BYTES:
            return loss(f"{size} bytes, more than the {MAX_DRAMA_JSON_BYTES // 1024} KiB a drama.json may hold")
        with fs.open(path, "rb") as f:
            data = f.read(MAX_DRAMA_JSON_BYTES + 1)
        info = parse_drama_info(data)
    except LandingRefusal as exc:
        return loss(str(exc))
    except (ValueError, ValidationError, OSError, RecursionError) as exc:
        # ValueError covers JSON and UTF-8 decode errors; RecursionError is a belt to the depth bound's braces.
        return loss(str(exc) or type(exc).__name__)
    if not info.title:
        info = info.model_copy(update={"title": drama_id})
    return info, []


def parse_drama_info(data: bytes) -> DramaInfo:
    """Decode and validate drama.json; ValueError (one line) names the first bound it breaks."""
    if len(data) > MAX_DRAMA_JSON_BYTES:
        raise ValueError(f"more than the {MAX_DRAMA_JSON_BYTES // 1024} KiB a drama.json may hold")
    depth = _json_depth(data)
    if depth > MAX_DRAMA_JSON_DEPTH:
        raise ValueError(f"nested {depth} levels deep (at most {MAX_DRAMA_JSON_DEPTH})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"top level is {type(raw).__name__}, expected an object")
    _check_strings(raw, "")
    for key in _SINGLE_LINE_FIELDS:
        value = raw.get(key)
        if isinstance(value, str):
            if len(value) > MAX_TITLE_CHARS:
                raise ValueError(f"{key!r} is {len(value)} characters long (at most {MAX_TITLE_CHARS})")
            if _LINE_BREAK.search(value):
                raise ValueError(f"{key!r} holds a line break or tab (it must be one line)")
    try:
        return DramaInfo.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid fields ({problems})") from None


def _json_depth(data: bytes) -> int:
    """Bracket nesting of a JSON text, strings skipped; linear, no recursion."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_strings(value, where: str) -> None:
    """Every key and string value: bounded, no control characters, no lone surrogates
    (which neither the catalog nor a UTF-8 file can store)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{where}key {printable(key[:40])!r}", 100)
            _check_strings(item, f"{where}{printable(key[:40])}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{where}{index}.")
    elif isinstance(value, str):
        _check_text(value, repr(where.rstrip(".")) if where else "the value", MAX_TEXT_CHARS)


def _check_text(text: str, where: str, limit: int) -> None:
    if len(text) > limit:
        raise ValueError(f"{where} is {len(text)} characters long (at most {limit})")
    if _CONTROL.search(text):
        raise ValueError(f"{where} holds a control character (e.g. NUL)")
    if _LONE_SURROGATE.search(text):
        raise ValueError(f"{where} holds a lone UTF-16 surrogate (not a character)")


def copy_into_landing(source: Path, landing_url: str, drama_id: str) -> tuple[str, list[str]]:
    """Copy the files of a drama folder into `<landing>/<drama_id>`; return its URI and what was not copied.

    Links in `source` are followed: their targets are copied, not the links. Sub-folders, broken
    links and FIFOs/devices are not copied (one line each in the returned list). On a local landing
    zone the drama folder must be a real folder inside the landing root, and each file is written
    through a temporary file renamed into place, so a link planted in the destination is
    replaced, never written through."""
    validate_drama_id(drama_id)
    source = Path(source)
    files, skipped = _source_files(source)
    fs, root = open_fs(landing_url)
    if not is_local(fs):
        target = f"{root}/{drama_id}"
        for name, real in files:
            fs.put_file(str(real), f"{target}/{name}")
        return full_uri(fs, target), skipped

    os.makedirs(root, exist_ok=True)
    landing = real_root(root)
    target = os.path.join(landing, drama_id)
    if os.path.islink(target):
        raise LandingRefusal(
            "symlink_outside_landing",
            f"the landing folder {target} is a symlink; a drama must be copied into a real folder",
        )
    if os.path.exists(target) and not os.path.isdir(target):
        raise LandingRefusal("not_a_file", f"the landing folder {target} is a file, not a folder")
    if os.path.realpath(source) == target:
        return target, skipped  # already in place
    os.makedirs(target, exist_ok=True)
    for name, real in files:
        destination = os.path.join(target, name)
        if os.path.isdir(destination) and not os.path.islink(destination):
            skipped.append(f"{printable(name)}: a folder of that name is in the way in the landing zone")
            continue
        handle, tmp = tempfile.mkstemp(dir=target, prefix=".ingest-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out, open(real, "rb") as src:
                shutil.copyfileobj(src, out, length=8 << 20)
            shutil.copystat(real, tmp)
            os.replace(tmp, destination)  # replaces a planted link itself, not its target
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    return target, skipped


def _source_files(source: Path) -> tuple[list[tuple[str, str]], list[str]]:
    files: list[tuple[str, str]] = []
    skipped: list[str] = []
    with os.scandir(source) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            shown = printable(entry.name)
            try:
                real = os.path.realpath(entry.path, strict=True) if entry.is_symlink() else entry.path
                st = os.stat(real)
            except OSError:
                skipped.append(f"{shown}: a broken symlink or symlink loop")
                continue
            if stat.S_ISDIR(st.st_mode):
                skipped.append(f"{shown}: a sub-folder (episodes must sit in the drama folder)")
            elif not stat.S_ISREG(st.st_mode):
                skipped.append(f"{shown}: not a regular file (FIFO, socket or device)")
            else:
                files.append((entry.name, real))
    return files, skipped


def printable(name: str) -> str:
    """File names may hold bytes that are not UTF-8 (surrogate escapes): show them escaped."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _fingerprint(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    try:
        entries = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
    except OSError:
        entries = []
    for entry in entries:
        # when it was written: mtime on local disks, LastModified (and the ETag) on object stores,
        # which have no mtime: without them a rewrite of the same size went unnoticed there
        written = entry.get("mtime") or f"{entry.get('LastModified', '')}|{entry.get('ETag', '')}".strip("|")
        digest.update(f"{entry['name']}|{entry.get('size')}|{written}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]
