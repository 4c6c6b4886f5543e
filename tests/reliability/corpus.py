"""A drama folder full of the broken files a scrape delivers, with what each must become."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import skimage.data

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
    with av.open(str(folder / "tmp-faststart.mp4")) as source, \
            av.open(str(folder / "ep16.mp4"), "w", options={"movflags": "faststart"}) as target:
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
    render_video(folder / "ep17.mkv", [ShotSpec(skimage.data.astronaut(), 3.0, "pan"),
                                       ShotSpec(skimage.data.coffee(), 3.0, "pan")], size=(160, 96))
    data = bytearray((folder / "ep17.mkv").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = np.random.default_rng(17).integers(0, 255, 2000, dtype=np.uint8).tobytes()
    (folder / "ep17.mkv").write_bytes(bytes(data))
    expected["ep17.mkv"] = None
    (folder / "cover.txt").write_text("sidecar text is ignored")
    (folder / "poster.psd").write_bytes(b"8BPS")
    expected["poster.psd"] = "not_a_video"
    (folder / "drama.json").write_text(json.dumps({"title": 42, "language": ["zh"]}))
    expected["drama.json"] = "invalid_drama_json"
    return expected
