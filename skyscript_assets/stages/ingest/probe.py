"""Probe one episode file with PyAV: geometry, timing, streams, and a content hash.

`probe_video` either returns a `VideoProbe` or raises `ProbeError` whose `reason` is a
short kind and whose message is the one-line explanation recorded as a loss.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import BinaryIO

import av
from av.stream import Disposition

# Enough packets to tell constant from variable frame rate without demuxing a whole episode.
VFR_SAMPLE_PACKETS = 600
# Frame intervals that differ by more than this fraction of the median mean VFR.
VFR_TOLERANCE = 0.2


# FFmpeg's demuxers of single pictures and image animations: such a file is no episode.
IMAGE_FORMATS = frozenset({"image2", "image2pipe", "gif", "apng", "ico", "webp", "jpegxl_anim"})
# How much of a file `sniff_media` looks at.
SNIFF_BYTES = 512
# ISO BMFF brands of still images (HEIF, AVIF), which share the "ftyp" box with MP4.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}


class ProbeError(Exception):
    """A file that cannot be used as an episode; `reason` is a short kind, str() the message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VideoProbe:
    container: str
    codec: str
    duration_s: float
    frame_count: int | None
    avg_fps: float
    is_vfr: bool
    coded_width: int
    coded_height: int
    display_width: int
    display_height: int
    rotation: int  # degrees counter-clockwise, one of 0, 90, 180, 270
    sample_aspect_ratio: str  # "num:den"
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    subtitle_streams: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def display_size(coded_width: int, coded_height: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    """Size a player shows: sample aspect ratio stretches the width, then rotation may swap axes."""
    width = coded_width
    height = coded_height
    if sar and sar > 0 and sar != 1:
        width = int(round(coded_width * sar))
        width += width % 2  # keep even, as encoders and scalers expect
    if rotation % 180 == 90:
        width, height = height, width
    return width, height


def normalise_rotation(degrees: float | int | None) -> int:
    if degrees is None:
        return 0
    return int(round(float(degrees) / 90.0)) * 90 % 360


def sha256_of(stream: BinaryIO, chunk_size: int = 4 << 20) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
    return digest.hexdigest()


def sniff_media(head: bytes) -> str | None:
    """The container family when the first bytes of a file are those of an audio or video
    container, else None. Cheap: used to decide which non-video-named files to probe."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else "iso-bmff"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"WAVE"):
        return "riff"
    if head.startswith((b"FLV\x01", b"OggS", b"fLaC", b"ID3", b".RMF", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "stream"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "mpeg-ts"
    return None


def probe_video(source: str | BinaryIO, *, name: str | None = None) -> VideoProbe:
    """Probe a video given as a local path or an open binary file (e.g. from fsspec)."""
    label = name or (source if isinstance(source, str) else getattr(source, "name", "<stream>"))
    try:
        container = av.open(source, mode="r")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProbeError("unreadable", f"{label}: cannot open as a video ({_one_line(exc)})") from None
    with container:
        # FFmpeg sniffed the content (a file object has no name to go by): trust it, not the extension.
        format_name = container.format.name
        if format_name.endswith("_pipe") or format_name in IMAGE_FORMATS:
            picture = format_name.removesuffix("_pipe")
            raise ProbeError("still_image", f"{label}: the content is an image ({picture}), not a video")
        # A cover picture beside an audio track (mp3, m4a) is a video stream for FFmpeg, not for us.
        videos = [s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)]
        if not videos:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            if "audio" in kinds:
                cover = " and a cover picture" if container.streams.video else ""
                raise ProbeError("no_video_stream", f"{label}: audio only{cover}, no video stream")
            raise ProbeError("no_video_stream", f"{label}: no video stream (streams: {', '.join(kinds)})")
        video = videos[0]
        codec_context = video.codec_context
        if codec_context is None:  # FFmpeg knows no decoder for this stream's codec id
            raise ProbeError("unsupported_codec", f"{label}: video codec is not supported by this FFmpeg build")
        coded_width, coded_height = int(codec_context.width or 0), int(codec_context.height or 0)
        if coded_width <= 0 or coded_height <= 0:
            raise ProbeError("no_video_stream", f"{label}: video stream has no frame size")

        # The first frame before the timing pass: a file cut short fails that pass at its end,
        # and the demuxer may not seek back cleanly after it.
        first_frame = _first_frame(container, video, label)
        container.seek(0)
        pts, last_end = _sample_packet_times(container, video)
        duration_s = _duration_seconds(container, video, last_end)
        if duration_s <= 0:
            raise ProbeError("zero_duration", f"{label}: video has zero duration")

        rotation = normalise_rotation(getattr(first_frame, "rotation", 0))
        sar = video.sample_aspect_ratio or codec_context.sample_aspect_ratio or Fraction(1, 1)
        display_w, display_h = display_size(coded_width, coded_height, Fraction(sar), rotation)

        frame_count = int(video.frames) if video.frames else None
        avg_rate = video.average_rate or video.guessed_rate
        avg_fps = float(avg_rate) if avg_rate else (frame_count / duration_s if frame_count else 0.0)
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoProbe(
            container=container.format.name,
            codec=codec_context.name,
            duration_s=round(duration_s, 6),
            frame_count=frame_count,
            avg_fps=round(avg_fps, 6),
            is_vfr=_is_variable_rate(pts, video.time_base),
            coded_width=coded_width,
            coded_height=coded_height,
            display_width=display_w,
            display_height=display_h,
            rotation=rotation,
            sample_aspect_ratio=f"{Fraction(sar).numerator}:{Fraction(sar).denominator}",
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=int(audio.codec_context.sample_rate or 0) or None if audio is not None else None,
            subtitle_streams=[
                {"index": s.index, "codec": s.codec_context.name, "language": s.metadata.get("language")}
                for s in container.streams.subtitles
            ],
        )


def _sample_packet_times(container, video) -> tuple[list[int], float]:
    """Presentation times of the first packets (demux only, no decode) and the end time seen."""
    pts: list[int] = []
    last_end = 0.0
    try:
        for packet in container.demux(video):
            if packet.pts is None:
                continue
            pts.append(packet.pts)
            end = float((packet.pts + (packet.duration or 0)) * video.time_base)
            last_end = max(last_end, end)
            if len(pts) >= VFR_SAMPLE_PACKETS:
                break
    except av.error.FFmpegError:
        pass  # a damaged tail still leaves the head usable; decoding decides below
    container.seek(0)
    return pts, last_end


def _duration_seconds(container, video, sampled_end: float) -> float:
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    if container.duration:
        return container.duration / av.time_base
    # No duration in the headers (some webm/ts): demux everything, it is cheap next to decoding.
    end = sampled_end
    try:
        for packet in container.demux(video):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * video.time_base))
    except av.error.FFmpegError:
        pass
    container.seek(0)
    return end


def _first_frame(container, video, label: str):
    try:
        for frame in container.decode(video):
            return frame
    except (av.error.FFmpegError, ValueError) as exc:
        raise ProbeError("undecodable", f"{label}: first video frame cannot be decoded ({_one_line(exc)})") from None
    raise ProbeError("no_frames", f"{label}: video stream holds no decodable frame")


def _is_variable_rate(pts: list[int], time_base) -> bool:
    if len(pts) < 3:
        return False
    ordered = sorted(pts)
    deltas = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
    if len(deltas) < 2:
        return False
    median = sorted(deltas)[len(deltas) // 2]
    # Timestamps are rounded to the time base, so allow one tick of jitter besides the tolerance.
    slack = max(VFR_TOLERANCE * median, 1)
    irregular = sum(1 for d in deltas if abs(d - median) > slack)
    return irregular > max(2, 0.05 * len(deltas))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
