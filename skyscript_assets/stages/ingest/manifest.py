"""The drama manifest: which episode files a drama has, what they are, in which order.

One pass per drama: list the folder, hash and probe every video, drop byte-identical
copies, order by the episode number in the file name. Each file that cannot be used is a
`LossRecord` with a one-line reason; the others go on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from skyscript_assets.schema import DramaInfo, LossRecord
from skyscript_assets.stages.ingest.landing import DRAMA_INFO_FILE, full_uri, open_fs, read_drama_info
from skyscript_assets.stages.ingest.probe import ProbeError, VideoProbe, probe_video, sha256_of

STAGE = "drama_manifest"
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .flv .ts .mts .m2ts .mpg .mpeg .wmv .3gp .ogv".split()
)
# Files that travel with episodes and are read by later stages, not episodes themselves.
SIDECAR_EXTENSIONS = frozenset(".srt .ass .ssa .vtt .json .md .txt .nfo .jpg .jpeg .png".split())

# "S01E03", "ep03", "episode 3", "第3集", or failing those the last number in the name.
_EPISODE_PATTERNS = [
    re.compile(r"[sS]\d+\s*[eE](\d+)"),
    re.compile(r"(?<![A-Za-z])(?:episode|ep|e)[\s._-]*(\d+)", re.IGNORECASE),
    re.compile(r"第\s*(\d+)\s*[集话話]"),
]
_ANY_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class EpisodeEntry:
    episode_id: str
    episode_number: int | None
    position: int
    file_name: str
    uri: str
    size_bytes: int
    sha256: str
    probe: VideoProbe


@dataclass
class Manifest:
    drama_id: str
    info: DramaInfo
    episodes: list[EpisodeEntry] = field(default_factory=list)
    losses: list[LossRecord] = field(default_factory=list)


def episode_number(file_name: str) -> int | None:
    stem = file_name.rsplit(".", 1)[0]
    for pattern in _EPISODE_PATTERNS:
        if match := pattern.search(stem):
            return int(match.group(1))
    numbers = _ANY_NUMBER.findall(stem)
    return int(numbers[-1]) if numbers else None


def episode_id_for(file_name: str) -> str:
    """A path-safe id from the file stem; a name that had to change gets a hash suffix so
    two different unicode names never collapse onto one id."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name.lstrip(".") else file_name
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80]
    if safe != stem or not safe:
        tag = hashlib.sha1(file_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        safe = f"{safe}-{tag}" if safe else f"episode-{tag}"
    return safe


def build_manifest(folder_uri: str, drama_id: str) -> Manifest:
    info, losses = read_drama_info(folder_uri, drama_id)
    manifest = Manifest(drama_id=drama_id, info=info, losses=losses)
    fs, folder = open_fs(folder_uri)

    try:
        entries = sorted(fs.ls(folder, detail=True), key=lambda e: e["name"])
    except OSError as exc:
        manifest.losses.append(_loss(drama_id, "(folder)", "unreadable_folder", f"cannot list the drama folder ({exc})"))
        return manifest

    candidates: list[tuple[int | None, str, dict]] = []
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".") or name == DRAMA_INFO_FILE:
            continue
        extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
        if entry.get("type") == "directory":
            manifest.losses.append(_loss(drama_id, name, "not_a_file", "sub-folders are not read; episodes must sit in the drama folder"))
        elif entry.get("type") not in ("file", None):
            # FIFOs, sockets and devices: opening one can block forever
            kind = "a broken symlink or symlink loop" if entry.get("islink") else "not a regular file (FIFO, socket or device)"
            manifest.losses.append(_loss(drama_id, name, "not_a_file", f"{_printable(name)}: {kind}"))
        elif extension in VIDEO_EXTENSIONS and not _is_utf8(name):
            # Such a path cannot be stored as text in the catalog nor passed on as a URI.
            manifest.losses.append(_loss(drama_id, name, "non_utf8_name", f"{_printable(name)}: file name is not valid UTF-8; rename it"))
        elif extension in VIDEO_EXTENSIONS:
            candidates.append((episode_number(name), name, entry))
        elif extension not in SIDECAR_EXTENSIONS:
            manifest.losses.append(_loss(drama_id, name, "not_a_video", f"extension {extension or '(none)'!r} is not a video format"))

    seen_hashes: dict[str, str] = {}
    accepted: list[tuple[int | None, str, str, int, str, VideoProbe]] = []
    # Ties go to the shorter stem, so "ep1.mp4" is kept and "ep1-copy.mp4" is the duplicate.
    for number, name, entry in sorted(candidates, key=lambda c: (c[0] is None, c[0] or 0, c[1].rsplit(".", 1)[0], c[1])):
        path = entry["name"]
        shown = _printable(name)
        try:
            size = int(fs.size(path) or 0)
            if size == 0:
                raise ProbeError("empty_file", f"{shown}: file is empty (0 bytes)")
            with fs.open(path, "rb") as f:
                digest = sha256_of(f)
            if digest in seen_hashes:
                raise ProbeError("duplicate", f"{shown}: byte-identical to {seen_hashes[digest]}, kept once")
            with fs.open(path, "rb") as f:
                probe = probe_video(f, name=shown)
        except ProbeError as exc:
            manifest.losses.append(_loss(drama_id, name, exc.reason, str(exc)))
            continue
        except OSError as exc:  # permission denied, symlink loop, vanished file, ...
            manifest.losses.append(_loss(drama_id, name, "unreadable", f"{shown}: {exc.strerror or exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a file FFmpeg chokes on in a new way is one loss, not a failed drama
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            manifest.losses.append(_loss(drama_id, name, "probe_failed", f"{shown}: probing failed ({type(exc).__name__}: {text})"))
            continue
        seen_hashes[digest] = shown
        accepted.append((number, name, full_uri(fs, path), size, digest, probe))

    for position, (number, name, uri, size, digest, probe) in enumerate(accepted):
        manifest.episodes.append(
            EpisodeEntry(episode_id_for(name), number, position, name, uri, size, digest, probe)
        )
    return manifest


def _loss(drama_id: str, item: str, reason: str, detail: str) -> LossRecord:
    return LossRecord(stage=STAGE, item=_printable(item), reason=reason, detail=f"{drama_id}: {detail}")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return True


def _printable(name: str) -> str:
    """File names may hold bytes that are not UTF-8 (surrogate escapes): show them escaped."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")
