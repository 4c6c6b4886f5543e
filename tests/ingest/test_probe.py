from fractions import Fraction

import av
import numpy as np
import pytest

from skyscript_assets.stages.ingest.probe import ProbeError, display_size, probe_video


def test_probe_reports_timing_geometry_and_streams(tmp_path, make_video):
    path, truth = make_video(tmp_path / "ep1.mp4", fps=24)
    probe = probe_video(str(path))
    assert probe.codec == "h264"
    assert probe.duration_s == pytest.approx(truth["frames"] / 24, abs=1 / 24)
    assert probe.avg_fps == pytest.approx(24)
    assert probe.frame_count == truth["frames"]
    assert not probe.is_vfr
    assert (probe.coded_width, probe.coded_height) == (96, 64)
    assert (probe.display_width, probe.display_height) == (96, 64)
    assert probe.rotation == 0
    assert not probe.has_audio


def test_rotation_and_sample_aspect_ratio_give_display_size(tmp_path, make_video):
    path, _ = make_video(tmp_path / "rotated.mp4", rotation=90, sample_aspect_ratio=Fraction(4, 3))
    probe = probe_video(str(path))
    assert probe.rotation == 90
    assert probe.sample_aspect_ratio == "4:3"
    # 96 * 4/3 = 128 wide before rotation; the 90 degree turn swaps the axes.
    assert (probe.display_width, probe.display_height) == (64, 128)


@pytest.mark.parametrize(
    "coded, sar, rotation, expected",
    [
        ((720, 576), Fraction(16, 15), 0, (768, 576)),
        ((1920, 1080), Fraction(1), 270, (1080, 1920)),
        ((800, 332), Fraction(399, 400), 0, (798, 332)),
        ((640, 360), Fraction(1), 180, (640, 360)),
    ],
)
def test_display_size(coded, sar, rotation, expected):
    assert display_size(*coded, sar, rotation) == expected


def test_variable_frame_rate_is_detected(tmp_path):
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 4) % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += 33 if i % 2 else 80  # alternating 30 fps and 12.5 fps intervals
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert probe_video(str(path)).is_vfr


def test_audio_stream_is_reported(shared_videos):
    probe = probe_video(str(shared_videos / "chaplin.mp4"))
    assert probe.has_audio and probe.audio_sample_rate == 44100
    assert probe.frame_count == 241


def test_shared_clip_geometry(shared_videos):
    tears = probe_video(str(shared_videos / "tears_of_steel_battle.webm"))
    assert (tears.coded_width, tears.coded_height) == (800, 332)
    assert tears.sample_aspect_ratio == "399:400"
    assert (tears.display_width, tears.display_height) == (798, 332)
    popeye = probe_video(str(shared_videos / "popeye_sinbad_part3.mkv"))
    assert popeye.codec == "hevc"
    assert popeye.subtitle_streams and popeye.subtitle_streams[0]["codec"] == "pgssub"


def _bad_inputs(tmp_path, make_video):
    good, _ = make_video(tmp_path / "good.mp4")
    data = good.read_bytes()
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])  # moov atom is at the end
    (tmp_path / "empty.mp4").write_bytes(b"")
    audio = tmp_path / "audio_only.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(10):
            samples = np.zeros((1, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return {
        "text.mp4": "unreadable",
        "truncated.mp4": "unreadable",
        "empty.mp4": "unreadable",
        "audio_only.m4a": "no_video_stream",
    }


def test_bad_inputs_raise_probe_error_with_one_line_reason(tmp_path, make_video):
    for name, reason in _bad_inputs(tmp_path, make_video).items():
        with pytest.raises(ProbeError) as excinfo:
            probe_video(str(tmp_path / name))
        assert excinfo.value.reason == reason, name
        message = str(excinfo.value)
        assert name in message and "\n" not in message
