"""Dialogue lines: subtitle cues from an .srt sidecar, from the container's subtitle stream
(text, or bitmaps such as PGS read with OCR) and from OCR of the frames' bottom band;
aligned to shots, deduplicated across frames, and written into the `line` of the speaking
character where the MLLM left it empty.
"""

from __future__ import annotations

import difflib
import glob
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from skyscript_assets.schema import LossRecord

STAGE = "dialogue"
BITMAP_CODECS = {"hdmv_pgs_subtitle", "pgssub", "dvd_subtitle", "dvdsub", "dvb_subtitle", "dvbsub", "xsub"}


@dataclass(frozen=True)
class SubtitleCue:
    start_s: float
    end_s: float
    text: str
    source: str  # "srt", "stream_text", "stream_bitmap" or "ocr"


_SRT_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})")
_TAGS = re.compile(r"<[^>]+>|\{[^}]*\}")


def parse_srt(text: str) -> list[SubtitleCue]:
    """Cues of a SubRip file; blocks without a valid time line are skipped."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\ufeff", "").replace("\r\n", "\n").strip()):
        lines = block.strip().split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        times = _SRT_TIME.findall(lines[timing])
        body = clean_text(" ".join(lines[timing + 1 :]))
        if len(times) == 2 and body:
            start, end = (_seconds(*t) for t in times)
            cues.append(SubtitleCue(start, end, body, "srt"))
    return cues


def read_srt(path: Path) -> tuple[list[SubtitleCue], list[LossRecord]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        return [], [LossRecord(stage=STAGE, item=str(path), reason="unreadable_subtitles", detail=str(err))]
    return decode_srt(str(path), raw)


def clean_text(text: str) -> str:
    """One line of plain text: markup tags, ASS override blocks and line breaks removed."""
    return " ".join(_TAGS.sub(" ", text.replace("\\N", " ").replace("\\n", " ")).split())


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def subtitle_stream_cues(video_path: Path, reader=None) -> tuple[list[SubtitleCue], list[LossRecord]]:
    """Cues of every subtitle stream in the container, read in one pass. Bitmap streams
    need `reader` (a `TextReader`); without one they are recorded as not run."""
    import av

    cues: list[SubtitleCue] = []
    losses: list[LossRecord] = []
    name = Path(video_path).name
    try:
        container = av.open(str(video_path))
    except (av.error.FFmpegError, OSError) as err:
        return [], [
            LossRecord(stage=STAGE, item=str(video_path), reason="unreadable_video", detail=str(err).splitlines()[0])
        ]
    with container:
        wanted = []
        for stream in container.streams.subtitles:
            if stream.codec_context.name in BITMAP_CODECS and reader is None:
                losses.append(
                    LossRecord(
                        stage=STAGE,
                        item=f"{name}#{stream.index}",
                        reason="not_run",
                        detail=f"bitmap subtitles ({stream.codec_context.name}) need an OCR reader",
                    )
                )
            else:
                wanted.append(stream)
        open_bitmaps: dict[int, tuple[float, str]] = {}  # a PGS cue without duration lasts until the next one
        try:
            for packet in container.demux(*wanted) if wanted else ():
                if packet.pts is not None:
                    cues += _packet_cues(packet, reader, open_bitmaps)
        except av.error.FFmpegError as err:  # a damaged file: keep what was read before the damage
            losses.append(
                LossRecord(stage=STAGE, item=name, reason="undecodable_subtitles", detail=str(err).splitlines()[0])
            )
    cues += [SubtitleCue(start, start + 2.0, text, "stream_bitmap") for start, text in open_bitmaps.values()]
    return sorted(cues, key=lambda c: c.start_s), losses


def _packet_cues(packet, reader, open_bitmaps: dict[int, tuple[float, str]]) -> list[SubtitleCue]:
    stream = packet.stream
    start = round(float(packet.pts * stream.time_base), 3)
    duration = round(float(packet.duration * stream.time_base), 3) if packet.duration else 0.0
    cues = []
    for subtitle in packet.decode():
        if getattr(subtitle, "type", b"") == b"bitmap":
            text = " ".join(t for t, _ in reader.read_lines(bitmap_subtitle_lines(subtitle)) if t)
            if stream.index in open_bitmaps:
                opened, opened_text = open_bitmaps.pop(stream.index)
                cues.append(SubtitleCue(opened, start, opened_text, "stream_bitmap"))
            if text and duration > 0:
                cues.append(SubtitleCue(start, start + duration, text, "stream_bitmap"))
            elif text:
                open_bitmaps[stream.index] = (start, text)
        else:
            raw = getattr(subtitle, "dialogue", None) or getattr(subtitle, "text", b"")
            text = clean_text(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
            if text:
                cues.append(SubtitleCue(start, start + duration, text, "stream_text"))
    return cues


def bitmap_subtitle_lines(subtitle) -> list[np.ndarray]:
    """One dark-on-white RGB crop per text line of a bitmap subtitle (PGS, DVD).

    PyAV hands over the palette indices but not the palette, so colours are inferred: the
    most common index is the transparent background, and the most common index inside the
    opaque shapes (eroded, so outlines drop out) is the letters' fill.
    """
    indices = np.frombuffer(bytes(subtitle.planes[0]), np.uint8).reshape(subtitle.height, -1)[:, : subtitle.width]
    return index_bitmap_lines(indices)


def index_bitmap_lines(indices: np.ndarray) -> list[np.ndarray]:
    """The line crops of a palette-index bitmap (see `bitmap_subtitle_lines`)."""
    values, counts = np.unique(indices, return_counts=True)
    opaque = (indices != values[np.argmax(counts)]).astype(np.uint8)
    if not opaque.any():
        return []
    inner = cv2.erode(opaque, np.ones((3, 3), np.uint8))
    fill_values, fill_counts = np.unique(
        indices[inner > 0] if inner.any() else indices[opaque > 0], return_counts=True
    )
    page = np.where(indices == fill_values[np.argmax(fill_counts)], 0, 255).astype(np.uint8)
    crops = []
    for top, bottom in _row_runs(opaque.any(axis=1)):
        if bottom - top < 4:  # specks, not text
            continue
        columns = np.flatnonzero(opaque[top:bottom].any(axis=0))
        crop = page[top:bottom, columns[0] : columns[-1] + 1]
        crop = cv2.copyMakeBorder(crop, 6, 6, 10, 10, cv2.BORDER_CONSTANT, value=255)
        crops.append(cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB))
    return crops


def _row_runs(rows: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for y, on in enumerate(list(rows) + [False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            runs.append((start, y))
            start = None
    return runs


def bottom_band_cues(reader, frames: list[tuple[float, np.ndarray]], band: float = 0.25) -> list[SubtitleCue]:
    """Burned-in subtitles: OCR of the bottom `band` of each (time_s, RGB frame); a cue per
    frame with text, lasting an instant (alignment to shots puts it in the shot at time_s)."""
    crops = [frame[int(frame.shape[0] * (1 - band)) :] for _, frame in frames]
    cues = []
    for (time_s, _), boxes in zip(frames, reader.read_text_lines(crops)):
        text = clean_text(" ".join(b.text for b in boxes))
        if text:
            cues.append(SubtitleCue(time_s, time_s, text, "ocr"))
    return cues


def normalize_line(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


def shot_cues(
    cues: list[SubtitleCue], shots: list[tuple[int, float, float]], similarity: float = 0.85
) -> dict[int, list[SubtitleCue]]:
    """Cues per shot (shot index, start s, end s): a cue belongs to every shot its time span
    overlaps (an instant cue: the shot that contains it); within a shot, cues that read the
    same (OCR of several keyframes, or the same cue from two sources) are kept once, the
    first-seen wording winning, in time order."""
    result: dict[int, list[SubtitleCue]] = {}
    for index, start, end in shots:
        kept: list[SubtitleCue] = []
        keys: list[str] = []
        for cue in sorted(cues, key=lambda c: c.start_s):
            inside = (
                (start <= cue.start_s < end) if cue.end_s <= cue.start_s else (cue.start_s < end and cue.end_s > start)
            )
            if not inside:
                continue
            key = normalize_line(cue.text)
            if key and not any(difflib.SequenceMatcher(None, key, k).ratio() >= similarity for k in keys):
                keys.append(key)
                kept.append(cue)
        result[index] = kept
    return result


def shot_lines(
    cues: list[SubtitleCue], shots: list[tuple[int, float, float]], similarity: float = 0.85
) -> dict[int, list[str]]:
    """The text of `shot_cues`."""
    return {index: [c.text for c in found] for index, found in shot_cues(cues, shots, similarity).items()}


def srt_sidecars(video_path: Path) -> list[Path]:
    """`.srt` files beside a video that belong to it: `ep01.srt`, `ep01.eng.srt`, ..."""
    video_path = Path(video_path)
    return sorted(
        p
        for p in video_path.parent.glob(f"{glob.escape(video_path.stem)}*.srt")
        if p.name[len(video_path.stem)] == "."
    )


def sidecar_srts(video_uri: str) -> list[tuple[str, bytes]]:
    """The `.srt` sidecars of a video (`ep01.srt`, `ep01.eng.srt`, ...) as (name, bytes), read
    through fsspec: the same on a local landing zone and on object storage."""
    from skyscript_assets.storage import open_fs

    fs, path = open_fs(video_uri)
    folder, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    found = []
    for candidate in sorted(fs.glob(f"{folder}/{glob.escape(stem)}.*srt")):
        base = candidate.rsplit("/", 1)[-1]
        if base.endswith(".srt") and base[len(stem)] == ".":
            with fs.open(candidate, "rb") as f:
                found.append((base, f.read()))
    return found


def decode_srt(name: str, raw: bytes) -> tuple[list[SubtitleCue], list[LossRecord]]:
    for encoding in ("utf-8-sig", "cp1252"):  # most sidecars are UTF-8; old ones Windows-1252
        try:
            return parse_srt(raw.decode(encoding)), []
        except UnicodeDecodeError:
            continue
    return [], [LossRecord(stage=STAGE, item=name, reason="unreadable_subtitles", detail="not UTF-8 or cp1252")]


def episode_lines(
    video_path: Path,
    shots: list[tuple[int, float, float]],
    reader=None,
    keyframes: list[tuple[float, np.ndarray]] = (),
    sidecars: list[tuple[str, bytes]] | None = None,
) -> tuple[dict[int, list[SubtitleCue]], list[LossRecord]]:
    """Every source of dialogue of one episode, aligned to its shots: the `.srt` sidecars
    (`sidecars`, or those beside `video_path`), the container's subtitle streams and, with a
    `reader`, OCR of the keyframes' bottom band ((time s, RGB image) pairs)."""
    cues, losses = subtitle_stream_cues(video_path, reader)
    if sidecars is None:
        sidecars = [(p.name, p.read_bytes()) for p in srt_sidecars(video_path)]
    for name, raw in sidecars:
        sidecar_cues, sidecar_losses = decode_srt(name, raw)
        cues += sidecar_cues
        losses += sidecar_losses
    if reader is not None and keyframes:
        cues += bottom_band_cues(reader, list(keyframes))
    return shot_cues(cues, shots), losses


def pick_speaker(people: list[dict], face_areas: list[float | None] | None = None) -> int | None:
    """The person who most likely speaks: the only one in the frame, else the one with the
    largest matched face (closest to the camera); None when that cannot be told."""
    if len(people) == 1:
        return 0
    if not face_areas or len(face_areas) != len(people):
        return None
    sized = [(area, i) for i, area in enumerate(face_areas) if area]
    if not sized:
        return None
    sized.sort(reverse=True)
    # two faces of about the same size: no way to tell who speaks
    if len(sized) > 1 and sized[1][0] > 0.8 * sized[0][0]:
        return None
    return sized[0][1]


# Where a line comes from, in the release (`line_source`): what was read beats what was guessed.
LINE_SOURCES = {"srt": "subtitle", "stream_text": "subtitle", "stream_bitmap": "subtitle", "ocr": "ocr"}
MLLM_GUESS = "mllm_guess"


def assign_lines(people: list[dict], cues: list[SubtitleCue], speaker: int | None) -> tuple[list[dict], bool]:
    """People with their `line` and `line_source`: the dialogue read for the shot (subtitle
    streams, .srt, OCR) goes to the speaker and wins over the MLLM's guess; a line the MLLM
    gave where nothing was read stays, marked `mllm_guess`. Returns (people, a read line
    was assigned?). The input is not mutated."""
    updated = [dict(p) for p in people]
    for person in updated:
        person["line_source"] = MLLM_GUESS if str(person.get("line") or "").strip() else None
    if speaker is None or not cues or not 0 <= speaker < len(updated):
        return updated, False
    sources = {LINE_SOURCES.get(c.source, "subtitle") for c in cues}
    updated[speaker]["line"] = " ".join(c.text for c in cues)
    updated[speaker]["line_source"] = "subtitle" if "subtitle" in sources else "ocr"
    return updated, True


def fill_missing_lines(people: list[dict], lines: list[str], speaker: int | None) -> tuple[list[dict], bool]:
    """`assign_lines` for plain text lines (subtitles), without the sources."""
    updated, assigned = assign_lines(people, [SubtitleCue(0.0, 0.0, line, "srt") for line in lines], speaker)
    return updated, assigned


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance between the two texts over the reference's length (spaces squeezed)."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))
