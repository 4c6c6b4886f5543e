"""A drama folder full of the broken files a scrape delivers, with what each must become."""

from __future__ import annotations

import io
import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import skimage.data
from PIL import Image

from skyscript_assets.demo.synthetic import ShotSpec, render_video


def _frames(count: int, size=(96, 64), seed=0):
    rng = np.random.default_rng(seed)
    return [ShotSpec(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), count / 24)]


def _empty_video(path: Path) -> None:
    """A container with a video stream and not a single frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # header only, zero packets


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def build_bad_drama(folder: Path) -> dict[str, str | None]:
    """Write the corpus; returns file name -> expected loss reason (None: a usable episode)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    render_video(folder / "ep01.mp4", _frames(12, seed=1), size=(96, 64))
    expected["ep01.mp4"] = None
    render_video(folder / "ep02.mp4", _frames(1, seed=2), size=(96, 64))  # one frame
    expected["ep02.mp4"] = None
    # 8K from a photograph (noise would average to flat grey once downscaled, and be "uniform")
    render_video(folder / "ep03-8k.mp4", [ShotSpec(skimage.data.astronaut(), 1 / 24)], size=(7680, 4320))
    expected["ep03-8k.mp4"] = None

    good = (folder / "ep01.mp4").read_bytes()
    (folder / "ep04.mp4").write_bytes(b"")
    expected["ep04.mp4"] = "empty_file"
    (folder / "ep05.mp4").write_bytes(good[: len(good) // 2])  # moov atom at the end is gone
    expected["ep05.mp4"] = "unreadable"
    (folder / "ep06.mp4").write_text("definitely not a video\n" * 100)
    expected["ep06.mp4"] = "unreadable"
    _audio_only(folder / "ep07.mp4")
    expected["ep07.mp4"] = "no_video_stream"
    _empty_video(folder / "ep08.mp4")
    expected["ep08.mp4"] = "no_video_stream"  # FFmpeg sees no usable stream without packets
    render_video(folder / "ep09.mkv", _frames(6, seed=9), size=(96, 64))
    data = (folder / "ep09.mkv").read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    (folder / "ep09.mkv").write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_SKYSCRIPT/XYZ"))  # unknown codec
    expected["ep09.mkv"] = "unsupported_codec"
    (folder / "ep10.mp4").write_bytes(good)  # byte-identical to ep01
    expected["ep10.mp4"] = "duplicate"
    os.symlink(folder / "ep11.mp4", folder / "ep11.mp4")  # symlink loop
    expected["ep11.mp4"] = "not_a_file"
    os.mkfifo(folder / "ep12.mp4")  # opening a FIFO would block forever
    expected["ep12.mp4"] = "not_a_file"
    render_video(folder / "ep13-第十三集.mp4", _frames(6, seed=13), size=(96, 64))
    expected["ep13-第十三集.mp4"] = None
    render_video(folder / "tmp.mp4", _frames(6, seed=14), size=(96, 64))
    os.rename(folder / "tmp.mp4", os.path.join(os.fsencode(folder), b"ep14-\xff\xfe.mp4"))
    expected["ep14-\\udcff\\udcfe.mp4"] = "non_utf8_name"
    render_video(folder / "ep15.mp4", _frames(6, seed=15), size=(96, 64), sample_aspect_ratio=Fraction(1, 1))
    expected["ep15.mp4"] = None
    # moov atom at the front (faststart), file cut in the middle: probes fine, decodes a part
    render_video(folder / "tmp-faststart.mp4", [ShotSpec(skimage.data.coffee(), 4.0, "pan")], size=(160, 96))
    with (
        av.open(str(folder / "tmp-faststart.mp4")) as source,
        av.open(str(folder / "ep16.mp4"), "w", options={"movflags": "faststart"}) as target,
    ):
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    (folder / "tmp-faststart.mp4").unlink()
    data = (folder / "ep16.mp4").read_bytes()
    (folder / "ep16.mp4").write_bytes(data[: int(len(data) * 0.6)])
    expected["ep16.mp4"] = None
    # garbage over the middle of the stream: the decoder skips what it cannot read
    render_video(
        folder / "ep17.mkv",
        [ShotSpec(skimage.data.astronaut(), 3.0, "pan"), ShotSpec(skimage.data.coffee(), 3.0, "pan")],
        size=(160, 96),
    )
    data = bytearray((folder / "ep17.mkv").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(17).integers(0, 255, 2000, dtype=np.uint8).tobytes()
    (folder / "ep17.mkv").write_bytes(bytes(data))
    expected["ep17.mkv"] = None
    (folder / "cover.txt").write_text("sidecar text is ignored")
    (folder / "poster.psd").write_bytes(b"8BPS")
    expected["poster.psd"] = "not_a_video"
    (folder / "drama.json").write_text(json.dumps({"title": 42, "language": ["zh"]}))
    expected["drama.json"] = "invalid_drama_json"
    expected.update(_misnamed_files(folder))
    expected.update(_symlinks(folder))
    return expected


def _png(path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()[::4, ::4]).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())


def _misnamed_files(folder: Path) -> dict[str, str | None]:
    """The content decides, not the extension."""
    expected: dict[str, str | None] = {}
    _png(folder / "ep18.mp4")  # a still named like a video
    expected["ep18.mp4"] = "still_image"
    render_video(folder / "tmp.mp4", _frames(6, seed=19), size=(96, 64))
    os.rename(folder / "tmp.mp4", folder / "ep19.txt")  # a video named like a sidecar: an episode
    expected["ep19.txt"] = None
    # two different videos whose names give the same episode id: one is kept, the other a loss naming both
    render_video(folder / "ep20.mkv", _frames(6, seed=20), size=(96, 64))
    expected["ep20.mkv"] = None
    render_video(folder / "ep20.mp4", _frames(6, seed=21), size=(96, 64))
    expected["ep20.mp4"] = "episode_id_collision"
    _audio_only(folder / "ep21.m4a")  # audio only under an extension that is no video's
    expected["ep21.m4a"] = "no_video_stream"
    _audio_only(folder / "tmp.mp4")
    os.rename(folder / "tmp.mp4", folder / "narration.srt")  # audio named like a subtitle: sniffed, a loss
    expected["narration.srt"] = "no_video_stream"
    render_video(folder / "tmp.mp4", _frames(6, seed=22), size=(96, 64))
    os.rename(folder / "tmp.mp4", folder / "ep22.bin")  # a video under an unknown extension: an episode
    expected["ep22.bin"] = None
    (folder / "README").write_text("episodes 1-22\n")  # no extension, no video: a loss, not silence
    expected["README"] = "not_a_video"
    _png(folder / "cover.png")  # a picture named as one: a sidecar, silently kept for later stages
    return expected


def _symlinks(folder: Path) -> dict[str, str | None]:
    """Links are followed only inside the landing root (the drama folder's parent)."""
    expected: dict[str, str | None] = {}
    landing = folder.parent
    library = landing / "library"  # inside the landing root, beside the drama folders
    library.mkdir(exist_ok=True)
    render_video(library / "clip24.mp4", _frames(6, seed=24), size=(96, 64))
    os.symlink(library / "clip24.mp4", folder / "ep24.mp4")
    expected["ep24.mp4"] = None
    outside = landing.parent / "outside-the-landing"
    outside.mkdir(exist_ok=True)
    render_video(outside / "ep25.mp4", _frames(6, seed=25), size=(96, 64))
    os.symlink(outside / "ep25.mp4", folder / "ep25.mp4")  # a good video, but outside
    expected["ep25.mp4"] = "symlink_outside_landing"
    os.symlink("/etc/passwd", folder / "ep23.mp4")
    expected["ep23.mp4"] = "symlink_outside_landing"
    os.symlink("/dev/zero", folder / "ep26.mp4")  # would be read forever
    expected["ep26.mp4"] = "symlink_outside_landing"
    os.symlink("/etc", folder / "ep27")  # a folder outside: refused, never listed
    expected["ep27"] = "symlink_outside_landing"
    os.symlink("../../outside-the-landing/ep25.mp4", folder / "ep28.mp4")  # relative, climbing out
    expected["ep28.mp4"] = "symlink_outside_landing"
    return expected


# --- drama.json: each case is one drama (one drama.json each) --------------------------------


def _write(content: bytes):
    return lambda path: path.write_bytes(content)


def _link(target: str):
    return lambda path: os.symlink(target, path)


# name -> (how to write drama.json, a fragment of the one-line loss detail); the loss reason is
# always "invalid_drama_json" and the drama goes on with its id as the title.
DRAMA_JSON_CASES = {
    "nested-200k": (
        _write(b'{"title": "x", "cast": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        "KiB a drama.json may hold",
    ),
    "nested-20k": (
        _write(b'{"title": "x", "cast": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
        "nested 20001 levels deep",
    ),
    "nul-in-title": (_write(b'{"title": "Love\\u0000Story"}'), "'title' holds a control character"),
    "lone-surrogate": (_write(b'{"title": "Love \\ud800 Story"}'), "'title' holds a lone UTF-16 surrogate"),
    "surrogate-key": (_write(b'{"title": "ok", "\\udfff": 1}'), "holds a lone UTF-16 surrogate"),
    "title-20mb": (_write(b'{"title": "' + b"A" * (20 << 20) + b'"}'), "KiB a drama.json may hold"),
    "title-100k": (_write(b'{"title": "' + b"A" * 100_000 + b'"}'), "'title' is 100000 characters long"),
    "title-two-lines": (_write(b'{"title": "Love\\nStory"}'), "'title' holds a line break"),
    "not-utf8": (_write(b'{"title": "\xff\xfe"}'), "not UTF-8"),
    "nan": (_write(b'{"title": "x", "rating": NaN}'), "NaN is not a JSON number"),
    "huge-number": (_write(b'{"title": "x", "views": ' + b"9" * 5000 + b"}"), "ignored"),
    "top-level-list": (_write(b'["title"]'), "top level is list"),
    "not-json": (_write(b'{"title": '), "not valid JSON"),
    "link-to-etc-passwd": (_link("/etc/passwd"), "outside the landing zone"),
    "fifo": (os.mkfifo, "not a regular file"),
}
