"""Decoding split at keyframes over several threads gives exactly the frames of one
sequential decode, in the same order: closed and open GOPs (leading pictures), B-frames,
H.264, HEVC, VP9 and the shared clips; errors come out where they happened; memory waits
for the consumer; threads end with it."""

import hashlib
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.stages.video.keyframes import EpisodeJob, KeyframeSettings, process_episode
from skyscript_assets.stages.video.segment_decode import BATCH_FRAMES, MIN_SEGMENT_PACKETS, analysed_frames


def _encode(path, codec: str, options: dict, frames: int = 96, size=(192, 112), keyframes_at=()):
    """A pan over a photograph with a cut every 30 frames, so that every frame differs;
    `keyframes_at`: frames the encoder is made to start a GOP at."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            photo = cv2.resize(photos[(i // 30) % len(photos)], (size[0] * 2, size[1] * 2))
            x = 2 * (i % 30)
            rgb = np.ascontiguousarray(photo[size[1] // 2 : size[1] // 2 + size[1], x : x + size[0]])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 24)
            if i in keyframes_at:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _signature(frame, number):
    planes = b"".join(
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].tobytes() for p in frame.planes[:3]
    )
    return (frame.pts, hashlib.sha1(planes).hexdigest()), 1


def _sequential(path):
    with av.open(str(path)) as container:
        return [_signature(frame, 0)[0] for frame in container.decode(video=0)]


def _segmented(path, workers, **kwargs):
    with av.open(str(path)) as container:
        return list(analysed_frames(container, container.streams.video[0], _signature, workers=workers, **kwargs))


def _leading_pictures(path) -> int:
    """Packets that follow a keyframe in decode order but are shown before it (open GOP)."""
    count, key_pts = 0, None
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.pts is None:
                continue
            if packet.is_keyframe:
                key_pts = packet.pts
            elif key_pts is not None and packet.pts < key_pts:
                count += 1
    return count


def _keyframes(path) -> int:
    with av.open(str(path)) as container:
        return sum(p.is_keyframe for p in container.demux(video=0) if p.size)


CASES = {
    "h264-closed-gop-bframes": (
        "libx264",
        {"g": "12", "bf": "3", "x264-params": "scenecut=0:min-keyint=12"},
        "mp4",
        False,
    ),
    "h264-open-gop": (
        "libx264",
        {"g": "12", "bf": "3", "x264-params": "open-gop=1:scenecut=0:min-keyint=12"},
        "mkv",
        True,
    ),
    "hevc-open-gop": (
        "libx265",
        {"x265-params": "keyint=12:min-keyint=12:open-gop=1:bframes=4:scenecut=0:log-level=error"},
        "mkv",
        True,
    ),
    "vp9": ("libvpx-vp9", {"g": "12", "deadline": "realtime", "cpu-used": "8"}, "webm", False),
    "mpeg2-open-gop-ts": ("mpeg2video", {"g": "12", "bf": "2"}, "ts", True),
    "mpeg4-bframes": ("mpeg4", {"g": "12", "bf": "2"}, "mkv", None),
    "av1": ("libsvtav1", {"g": "12", "preset": "12"}, "mkv", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_segments_decode_to_exactly_the_sequential_frames(tmp_path, case):
    codec, options, suffix, open_gop = CASES[case]
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} is not in this FFmpeg build")
    path = _encode(tmp_path / f"v.{suffix}", codec, options)
    assert _keyframes(path) >= 96 // MIN_SEGMENT_PACKETS  # several segments to split into
    if open_gop is not None:  # the case is what it claims: pictures shown before their keyframe, or none
        assert (_leading_pictures(path) > 0) == open_gop
    reference = _sequential(path)
    assert len(reference) == 96 and len({h for _, h in reference}) == 96
    for workers in (1, 2, 3):
        assert _segmented(path, workers) == reference, workers


def test_the_shared_clips_decode_identically_in_segments(shared_videos):
    for path in sorted(shared_videos.glob("*")):
        if path.suffix in (".json", ".srt"):
            continue
        assert _segmented(path, 2) == _sequential(path), path.name


def test_keyframes_do_not_depend_on_the_number_of_decoder_threads(tmp_path):
    path = _encode(tmp_path / "v.mkv", "libx264", CASES["h264-open-gop"][1], frames=150)
    results = []
    for threads in (1, 2, 3):
        r = process_episode(
            EpisodeJob(
                "v",
                str(path),
                str(tmp_path / f"kf{threads}"),
                KeyframeSettings(decode_threads=threads, seconds_per_keyframe=1.0),
            )
        ).results[0]
        results.append(
            (
                [(s.start_frame, s.end_frame, s.transition_in) for s in r.shots],
                [(k.frame, k.valid, k.invalid_reason, k.sharpness) for k in r.keyframes],
                [Path(k.path).read_bytes() for k in r.keyframes],
            )
        )
    assert results[0] == results[1] == results[2]
    assert [s[0] for s in results[0][0]] == [0, 30, 60, 90, 120]  # the cuts, across segment borders (every 12 frames)


def test_a_decoder_error_comes_out_after_the_frames_before_it(tmp_path):
    path = _encode(tmp_path / "v.mp4", "libx264", CASES["h264-closed-gop-bframes"][1])
    reference = _sequential(path)

    def failing(frame, number):
        if frame.pts == reference[50][0]:
            raise av.error.InvalidDataError(1094995529, "injected")
        return _signature(frame, number)

    got = []
    with av.open(str(path)) as container:
        with pytest.raises(av.error.InvalidDataError):
            for item in analysed_frames(container, container.streams.video[0], failing, workers=3):
                got.append(item)
    assert got == reference[:50]
    assert not [t for t in threading.enumerate() if t.name.startswith(("skyscript-decode", "skyscript-demux"))]


def test_decoders_ahead_wait_for_the_consumer_and_stop_with_it(tmp_path):
    path = _encode(tmp_path / "v.mp4", "libx264", CASES["h264-closed-gop-bframes"][1], frames=144)
    produced, consumed, most_ahead = [0], [0], [0]
    lock = threading.Lock()

    def counting(frame, number):
        with lock:
            produced[0] += 1
            most_ahead[0] = max(most_ahead[0], produced[0] - consumed[0])
        return _signature(frame, number)

    with av.open(str(path)) as container:
        frames = analysed_frames(container, container.streams.video[0], counting, workers=3, budget_bytes=0)
        for _ in range(100):
            next(frames)
            with lock:
                consumed[0] += 1
        frames.close()  # the consumer stops early
    # With no room at all, only the segment being read runs ahead of the consumer, and each
    # of the two other decoders by a batch handed over and one being made; without the
    # budget all six segments would be decoded ahead.
    assert most_ahead[0] <= MIN_SEGMENT_PACKETS + 2 * 2 * BATCH_FRAMES < 144
    assert not [t for t in threading.enumerate() if t.name.startswith(("skyscript-decode", "skyscript-demux"))]


IRREGULAR_GOPS = [0, 30, 130, 160, 190, 340, 370]  # GOPs of 30, 100, 30, 30, 150, 30 and 30 frames


def _irregular_gops(tmp_path):
    options = {"bf": "2", "x264-params": "keyint=400:min-keyint=400:scenecut=0"}
    path = _encode(tmp_path / "irregular.mp4", "libx264", options, frames=400, keyframes_at=IRREGULAR_GOPS)
    with av.open(str(path)) as container:
        starts = [n for n, packet in enumerate(p for p in container.demux(video=0) if p.size) if packet.is_keyframe]
    assert starts == IRREGULAR_GOPS
    return path


def test_gops_of_any_length_decode_exactly_whichever_goes_first(tmp_path):
    # Longest first: decoders take segments out of order; the frames still come out
    # exactly as one sequential decode gives them.
    path = _irregular_gops(tmp_path)
    reference = _sequential(path)
    for workers in (2, 3):
        assert _segmented(path, workers) == reference


def test_packets_read_ahead_are_bounded_in_bytes(tmp_path, monkeypatch):
    from skyscript_assets.stages.video import segment_decode

    path = _irregular_gops(tmp_path)
    ahead = []  # how far past the segment being read each segment was let in, and the bytes already waiting

    class Segments(dict):
        def __setitem__(self, number, segment):  # by the demuxer, holding the pipeline's lock
            pipeline = pipelines[-1]
            ahead.append((number - pipeline.reading, pipeline.packet_bytes - segment.packet_bytes))
            super().__setitem__(number, segment)

    pipelines = []
    original_init = segment_decode._Pipeline.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.segments = Segments()
        pipelines.append(self)

    monkeypatch.setattr(segment_decode._Pipeline, "__init__", init)
    monkeypatch.setattr(segment_decode, "READ_AHEAD_BYTES", 0)
    assert _segmented(path, 3) == _sequential(path)
    # Past the next segment only once every packet read before was decoded.
    assert len(ahead) == len(IRREGULAR_GOPS) and all(n <= 1 or waiting == 0 for n, waiting in ahead)
    monkeypatch.setattr(segment_decode, "READ_AHEAD_BYTES", 2**30)
    ahead.clear()
    _segmented(path, 3)
    assert any(n > 1 and waiting > 0 for n, waiting in ahead)


def test_a_stream_without_timestamps_is_decoded_whole_and_in_order(tmp_path):
    path = _encode(tmp_path / "raw.h264", "libx264", CASES["h264-closed-gop-bframes"][1])  # Annex B: no timestamps
    reference = _sequential(path)
    assert _keyframes(path) >= 4 and reference[0][0] is None and len(reference) == 96
    assert _segmented(path, 3) == reference


def test_decoder_threads_are_the_request_or_a_share_of_the_cores(monkeypatch):
    from skyscript_assets.stages.video import keyframes
    from skyscript_assets.stages.video.keyframes import MAX_AUTO_DECODE_THREADS, decode_threads, episode_processes

    assert decode_threads(3) == 3 and decode_threads(3, episodes_at_once=8) == 3  # asked for: given
    assert 1 <= decode_threads() <= MAX_AUTO_DECODE_THREADS
    for cores, at_once, threads in ((1, 1, 1), (2, 1, 2), (2, 10_000, 2), (8, 1, 4), (8, 4, 2), (16, 4, 4)):
        monkeypatch.setattr(keyframes, "available_cores", lambda cores=cores: cores)
        # Never fewer than two where there are two cores: the split decode engages whatever
        # the number of episodes side by side (the last ones of a drama run alone).
        assert decode_threads(0, episodes_at_once=at_once) == threads, (cores, at_once)
    monkeypatch.setattr(keyframes, "available_cores", lambda: 8)
    assert episode_processes(10) == 4 and episode_processes(3) == 3 and episode_processes(10, 6) == 6
    monkeypatch.setattr(keyframes, "available_cores", lambda: 1)
    assert episode_processes(10) == 1


def test_available_cores_honour_a_container_cpu_quota(tmp_path, monkeypatch):
    from skyscript_assets.stages.video import keyframes

    (tmp_path / "cpu.max").write_text("150000 100000\n")  # cgroup v2: 1.5 CPUs
    assert keyframes._cgroup_cpu_quota(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert keyframes._cgroup_cpu_quota(str(tmp_path)) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert keyframes._cgroup_cpu_quota(str(tmp_path)) == 2.0
    monkeypatch.setattr(keyframes, "_cgroup_cpu_quota", lambda: 2.0)
    monkeypatch.setattr(keyframes.os, "sched_getaffinity", lambda pid: set(range(64)))  # a big node
    assert keyframes.available_cores() == 2


def test_the_longest_segment_goes_first_and_ffmpeg_threads_to_the_one_that_ends_alone():
    # In order while no decoder is behind, or while what an item weighs is not known; with
    # one on an earlier segment, the longest segment read ahead whose items fit in the room
    # left (the first one not taken always may), so that no long GOP is decoded alone at the
    # end. Once demuxing is done, a segment longer than all the rest left also gets FFmpeg's
    # threads: it ends last, with the cores to itself.
    from types import SimpleNamespace

    from skyscript_assets.stages.video.segment_decode import _Pipeline, _Segment

    stream = SimpleNamespace(codec_context=SimpleNamespace(name="h264"))
    pipeline = _Pipeline(None, stream, analyse=None, workers=2, budget_bytes=1000)
    sizes = [30, 250, 40, 25, 60, 20, 28, 35]
    pipeline.segments = {n: _Segment(n, packets=[None] * size) for n, size in enumerate(sizes)}
    pipeline.demuxed, pipeline.demux_done = len(sizes), True

    def take():
        segment, ends_alone = pipeline._take_segment()
        return segment.number, ends_alone

    assert take() == (0, False)  # nothing before it: in order
    assert take() == (1, True)  # in order too; and longer than all the rest together
    pipeline.segments[0].decoded = True
    assert take() == (2, False)  # 1 in flight, but nothing handed out yet to weigh: in order
    pipeline.handed_bytes, pipeline.handed_frames = 100, 100  # items weigh 1 a frame
    assert take() == (4, False)  # 1 in flight, before 3: the longest of 3..7
    pipeline.segments[1].decoded = pipeline.segments[2].decoded = True
    assert take() == (3, False)  # none in flight before 3: in order again
    pipeline.buffered = 1000 - 30  # room for 30 frames
    assert take() == (6, False)  # 3 in flight: the longest that fits (7, 35 frames, does not)
    pipeline.buffered = 1000 - 10
    assert take() == (5, False)  # none fits: 5 is read next, so it goes whatever its size
    pipeline.buffered = 0
    pipeline.demux_done = False
    assert take() == (7, False)  # still demuxing: more may come, nothing can be known to end alone
    pipeline.segments[7].taken, pipeline.demux_done = False, True
    assert take() == (7, True)
    assert pipeline._take_segment() is None
