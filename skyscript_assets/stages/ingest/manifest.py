"""The drama manifest: which episode files a drama has, what they are, in which order.

One pass per drama: list the folder, hash and probe every video, drop byte-identical
copies, order by the episode number in the file name. Each file that cannot be used is a
`LossRecord` with a one-line reason; the others go on.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field

from skyscript_assets.schema import DramaInfo, LossRecord
from skyscript_assets.stages.ingest.landing import (
    DRAMA_INFO_FILE,
    LandingRefusal,
    full_uri,
    is_local,
    open_fs,
    printable,
    read_drama_info,
    real_root,
    resolve_local,
)
from skyscript_assets.stages.ingest.probe import (
    SNIFF_BYTES,
    ProbeError,
    VideoProbe,
    probe_video,
    sha256_of,
    sniff_media,
)

STAGE = "drama_manifest"
STAGE_VERSION = "1"
VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mov .mkv .webm .avi .flv .ts .mts .m2ts .mpg .mpeg .wmv .3gp .ogv".split())
# Files that travel with episodes and are read by later stages, not episodes themselves; one
# whose content starts like an audio or video container is probed all the same. Files with any
# other extension are probed too: the content, not the name, decides what is a video.
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

    @property
    def files(self) -> int:
        """Files looked at: the episodes kept and those lost by this stage (the loss rate's denominator)."""
        return len(self.episodes) + sum(1 for loss in self.losses if loss.stage == STAGE)

    @property
    def duration_s(self) -> float:
        return sum(e.probe.duration_s for e in self.episodes)

    def document(self, landing_uri: str) -> dict:
        """The manifest as written beside the catalog rows (`manifest.json`)."""
        return {
            "drama_id": self.drama_id,
            "info": self.info.model_dump(),
            "landing_uri": landing_uri,
            "episodes": [
                {
                    "episode_id": e.episode_id,
                    "file_name": e.file_name,
                    "uri": e.uri,
                    "sha256": e.sha256,
                    "episode_number": e.episode_number,
                    **e.probe.as_dict(),
                }
                for e in self.episodes
            ],
            "losses": [loss.model_dump() for loss in self.losses],
        }


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


def build_manifest(folder_uri: str, drama_id: str, *, landing_root: str | None = None) -> Manifest:
    """The manifest of the drama folder at `folder_uri`.

    `landing_root` (default: the folder's parent) is where symlinks may lead: the folder itself
    and each episode link are followed only when they stay inside it."""
    fs, folder = open_fs(folder_uri)
    local = is_local(fs)
    landing = real_root(landing_root if landing_root is not None else os.path.dirname(folder)) if local else ""
    if local:
        try:
            folder, _ = resolve_local(folder, landing)
        except LandingRefusal as exc:
            manifest = Manifest(drama_id=drama_id, info=DramaInfo(title=drama_id))
            manifest.losses.append(_loss(drama_id, "(folder)", exc.kind, f"the drama folder is {exc}"))
            return manifest
        except OSError as exc:
            manifest = Manifest(drama_id=drama_id, info=DramaInfo(title=drama_id))
            manifest.losses.append(
                _loss(
                    drama_id, "(folder)", "unreadable_folder", f"cannot read the drama folder ({exc.strerror or exc})"
                )
            )
            return manifest
    info, losses = read_drama_info(full_uri(fs, folder), drama_id, landing_root=landing if local else None)
    manifest = Manifest(drama_id=drama_id, info=info, losses=losses)

    try:
        entries = sorted(fs.ls(folder, detail=True), key=lambda e: e["name"])
    except OSError as exc:
        manifest.losses.append(
            _loss(drama_id, "(folder)", "unreadable_folder", f"cannot list the drama folder ({exc})")
        )
        return manifest

    candidates: list[tuple[int | None, str, str]] = []
    for entry in entries:
        path = entry["name"].rstrip("/")
        name = path.rsplit("/", 1)[-1]
        if name.startswith(".") or name == DRAMA_INFO_FILE:
            continue
        shown = _printable(name)
        kind = entry.get("type")
        if local and entry.get("islink"):
            try:
                path, st = resolve_local(path, landing)
            except LandingRefusal as exc:
                manifest.losses.append(_loss(drama_id, name, exc.kind, f"{shown}: {exc}"))
                continue
            except OSError as exc:
                manifest.losses.append(_loss(drama_id, name, "unreadable", f"{shown}: {exc.strerror or exc}"))
                continue
            kind = "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        extension = _extension(name)
        if kind == "directory":
            manifest.losses.append(
                _loss(drama_id, name, "not_a_file", "sub-folders are not read; episodes must sit in the drama folder")
            )
        elif kind not in ("file", None):
            # FIFOs, sockets and devices: opening one can block forever
            manifest.losses.append(
                _loss(drama_id, name, "not_a_file", f"{shown}: not a regular file (FIFO, socket or device)")
            )
        elif extension in SIDECAR_EXTENSIONS and not _holds_media(fs, path):
            continue  # subtitles, notes and pictures that travel with the episodes
        elif not _is_utf8(name):
            # Such a path cannot be stored as text in the catalog nor passed on as a URI.
            manifest.losses.append(
                _loss(drama_id, name, "non_utf8_name", f"{shown}: file name is not valid UTF-8; rename it")
            )
        else:
            # Whatever the extension says, the content decides (probe_video sniffs it).
            candidates.append((episode_number(name), name, path))

    seen_hashes: dict[str, str] = {}
    accepted: list[tuple[int | None, str, str, int, str, VideoProbe]] = []
    # Ties go to the shorter stem, so "ep1.mp4" is kept and "ep1-copy.mp4" is the duplicate.
    for number, name, path in sorted(
        candidates, key=lambda c: (c[0] is None, c[0] or 0, c[1].rsplit(".", 1)[0], c[1])
    ):
        shown = _printable(name)
        named_as_video = _extension(name) in VIDEO_EXTENSIONS
        try:
            size = int(fs.size(path) or 0)
            if size == 0:
                if not named_as_video:
                    raise ProbeError(
                        "not_a_video", f"{shown}: empty, and {_extension_words(name)} is not a video format"
                    )
                raise ProbeError("empty_file", f"{shown}: file is empty (0 bytes)")
            if not named_as_video:  # most such files are no video: probe before hashing them
                probe = _probe(fs, path, name, shown)
            with fs.open(path, "rb") as f:
                digest = sha256_of(f)
            if digest in seen_hashes:
                raise ProbeError("duplicate", f"{shown}: byte-identical to {seen_hashes[digest]}, kept once")
            if named_as_video:
                probe = _probe(fs, path, name, shown)
        except ProbeError as exc:
            manifest.losses.append(_loss(drama_id, name, exc.reason, str(exc)))
            continue
        except OSError as exc:  # permission denied, symlink loop, vanished file, ...
            manifest.losses.append(_loss(drama_id, name, "unreadable", f"{shown}: {exc.strerror or exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a file FFmpeg chokes on in a new way is one loss, not a failed drama
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            manifest.losses.append(
                _loss(drama_id, name, "probe_failed", f"{shown}: probing failed ({type(exc).__name__}: {text})")
            )
            continue
        seen_hashes[digest] = shown
        accepted.append((number, name, full_uri(fs, path), size, digest, probe))

    # Episode ids are unique by construction: a second file whose name gives an id already taken
    # (ep08.mp4 and ep08.mkv, EP08.mp4 and ep08.mp4) is a loss naming both, never a catalog clash.
    # Case is ignored, as artifact folders on a case-insensitive filesystem would merge.
    owners: dict[str, str] = {}
    for number, name, uri, size, digest, probe in accepted:
        episode_id = episode_id_for(name)
        if (taken := owners.get(episode_id.lower())) is not None:
            manifest.losses.append(
                _loss(
                    drama_id,
                    name,
                    "episode_id_collision",
                    f"{_printable(name)}: episode id {episode_id!r} is already taken by {_printable(taken)}; "
                    "rename one of the two",
                )
            )
            continue
        owners[episode_id.lower()] = name
        manifest.episodes.append(
            EpisodeEntry(episode_id, number, len(manifest.episodes), name, uri, size, digest, probe)
        )
    return manifest


def _probe(fs, path: str, name: str, shown: str) -> VideoProbe:
    with fs.open(path, "rb") as f:
        try:
            return probe_video(f, name=shown)
        except ProbeError as exc:
            if exc.reason == "unreadable" and _extension(name) not in VIDEO_EXTENSIONS:
                raise ProbeError(
                    "not_a_video", f"{shown}: {_extension_words(name)} is not a video format, nor is the content"
                ) from None
            raise


def _extension(name: str) -> str:
    return ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""


def _extension_words(name: str) -> str:
    extension = _extension(name)
    return f"extension {extension!r}" if extension else "a name without extension"


def _holds_media(fs, path: str) -> bool:
    """Whether a file named like a sidecar (.txt, .jpg, ...) starts like an audio or video container."""
    try:
        with fs.open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return True  # let the probe loop say why it cannot be read
    return sniff_media(head) is not None


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
    return printable(name)
