import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.demo.demo_drama import demo_episodes
from skyscript_assets.demo.synthetic import burn_subtitle
from skyscript_assets.models.ocr import TextReader
from skyscript_assets.stages.refinement.dialogue import (
    SubtitleCue,
    assign_lines,
    bottom_band_cues,
    character_error_rate,
    episode_lines,
    fill_missing_lines,
    index_bitmap_lines,
    parse_srt,
    pick_speaker,
    read_srt,
    shot_lines,
    subtitle_stream_cues,
)


@pytest.fixture(scope="module")
def reader():
    return TextReader.load()


@pytest.fixture
def popeye(shared_videos):
    video, srt = shared_videos / "popeye_sinbad_part3.mkv", shared_videos / "popeye_sinbad_part3.eng.srt"
    if not (video.is_file() and srt.is_file()):
        pytest.skip("the Popeye clip or its .srt is absent")
    return video, srt


def test_srt_sidecar_is_parsed_with_times_and_joined_lines(popeye):
    cues, losses = read_srt(popeye[1])
    assert losses == [] and len(cues) == 15
    assert cues[0] == SubtitleCue(12.4, 13.7, "[squawk]", "srt")
    assert cues[11].text == "I gotta take another look at that thing"  # two screen lines, one cue
    assert cues[-1].end_s == pytest.approx(61.036)


def test_srt_markup_crlf_and_broken_blocks():
    text = (
        "1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> {\\an8}there\r\n\r\nno time here\r\n\r\n"
        "3\r\n00:01:00.5 --> 00:01:01,250\r\nBye\r\n"
    )
    assert parse_srt(text) == [SubtitleCue(1.0, 2.5, "Hello there", "srt"), SubtitleCue(60.5, 61.25, "Bye", "srt")]


def test_pgs_bitmap_track_reads_like_its_srt(popeye, reader):
    cues, losses = subtitle_stream_cues(popeye[0], reader)
    assert losses == [] and len(cues) == 11 and {c.source for c in cues} == {"stream_bitmap"}
    srt, _ = read_srt(popeye[1])
    reference, hypothesis = [], []
    for cue in cues:
        twin = min(srt, key=lambda s: abs(s.start_s - cue.start_s))
        assert abs(twin.start_s - cue.start_s) < 0.1 and cue.end_s > cue.start_s
        assert character_error_rate(twin.text, cue.text) <= 0.1, (twin.text, cue.text)
        reference.append(twin.text)
        hypothesis.append(cue.text)
    assert character_error_rate(" ".join(reference), " ".join(hypothesis)) <= 0.02


def test_bitmap_subtitles_without_a_reader_are_recorded_not_run(popeye):
    cues, losses = subtitle_stream_cues(popeye[0], None)
    assert cues == [] and [(loss.reason, loss.item) for loss in losses] == [("not_run", "popeye_sinbad_part3.mkv#1")]


def test_index_bitmap_lines_split_lines_and_drop_the_outline():
    bitmap = np.zeros((60, 100), np.uint8)
    bitmap[5:25, 10:90] = 7  # outline colour
    bitmap[8:22, 13:87] = 3  # fill of line one
    bitmap[35:55, 20:60] = 7
    bitmap[38:52, 23:57] = 3
    crops = index_bitmap_lines(bitmap)
    assert len(crops) == 2
    assert crops[0].shape == (20 + 12, 80 + 20, 3)  # the line plus its white margin
    assert crops[0][6 + 3, 10 + 3].tolist() == [0, 0, 0]  # fill is dark
    assert crops[0][6, 10].tolist() == [255, 255, 255]  # outline is paper


def test_popeye_lines_align_to_shots_once_each(popeye, reader):
    srt, _ = read_srt(popeye[1])
    bitmap, _ = subtitle_stream_cues(popeye[0], reader)
    shots = [(0, 0.0, 30.0), (1, 30.0, 40.0), (2, 40.0, 44.0), (3, 44.0, 70.0)]
    lines = shot_lines(srt + bitmap, shots)
    assert lines[0] == ["[squawk]"]  # two squawks from two sources: one line
    assert lines[1] == ["Oh! Oh! W-What happened?", "[screams]", "H-H-Help! P-P-Popeye!"]
    assert lines[2] == [
        "H-H-Help! P-P-Popeye!",
        "Ohh! Let me go! Let me go!",
        "Let me go!",
        "Nonono! Don't drop me now!",
    ]
    assert lines[3][0] == "Nonono! Don't drop me now!" and "Look at that fellow go" in lines[3]
    assert len(lines[3]) == len({line.lower() for line in lines[3]})


def test_burned_in_demo_subtitles_are_read_within_five_percent_cer(reader):
    photos = {"astronaut": skimage.data.astronaut(), "coffee": skimage.data.coffee(), "camera": skimage.data.camera()}
    subtitles = [s.subtitle for shots in demo_episodes().values() for s in shots if s.subtitle]
    assert len(subtitles) >= 4
    frames = []
    for index, text in enumerate(subtitles):
        photo = list(photos.values())[index % len(photos)]
        photo = photo if photo.ndim == 3 else np.stack([photo] * 3, axis=-1)
        frames.append((float(index), burn_subtitle(cv2.resize(photo, (1280, 720)), text)))
    cues = bottom_band_cues(reader, frames)
    assert [c.start_s for c in cues] == [float(i) for i in range(len(subtitles))]
    assert character_error_rate(" ".join(subtitles), " ".join(c.text for c in cues)) <= 0.05


def test_ocr_lines_of_several_keyframes_of_a_shot_are_kept_once():
    cues = [
        SubtitleCue(1.0, 1.0, "I never left.", "ocr"),
        SubtitleCue(1.5, 1.5, "I never Ieft", "ocr"),
        SubtitleCue(2.0, 2.0, "I'm Emma.", "ocr"),
        SubtitleCue(3.5, 3.5, "I'm Emma.", "ocr"),
    ]
    assert shot_lines(cues, [(0, 0.0, 3.0), (1, 3.0, 4.0)]) == {0: ["I never left.", "I'm Emma."], 1: ["I'm Emma."]}


def test_read_dialogue_beats_the_mllms_guess_which_is_kept_only_where_nothing_was_read():
    people = [{"type": "woman", "line": ""}, {"type": "man", "line": None}]
    filled, changed = fill_missing_lines(people, ["I kept your cup."], speaker=pick_speaker(people, [900.0, 200.0]))
    assert changed and filled[0]["line"] == "I kept your cup." and filled[1]["line"] is None
    assert filled[0]["line_source"] == "subtitle" and filled[1]["line_source"] is None
    assert people[0]["line"] == "" and "line_source" not in people[0]  # the input is not mutated
    said = [{"type": "woman", "line": "Hello."}]
    subtitled, changed = fill_missing_lines(said, ["Goodbye."], pick_speaker(said))
    assert changed and subtitled[0] == {"type": "woman", "line": "Goodbye.", "line_source": "subtitle"}
    guessed, changed = assign_lines(said, [], pick_speaker(said))  # nothing read: the guess stays, marked
    assert not changed and guessed[0] == {"type": "woman", "line": "Hello.", "line_source": "mllm_guess"}
    ocr, _ = assign_lines(said, [SubtitleCue(1.0, 1.0, "Goodbye.", "ocr")], 0)
    assert ocr[0]["line"] == "Goodbye." and ocr[0]["line_source"] == "ocr"
    assert pick_speaker(people, [500.0, 480.0]) is None  # two faces alike: nobody is guessed
    assert pick_speaker(people) is None and pick_speaker(said) == 0
    unchanged, changed = fill_missing_lines(people, ["x"], None)
    assert not changed and [p["line"] for p in unchanged] == ["", None]


def _video_with_text_subtitles(path, cues_ms, tracks=1):
    """A tiny MKV with `tracks` SubRip tracks holding (start ms, end ms, text) cues; track n
    prefixes its texts with "n:" from the second track on."""
    import fractions

    import av
    from av.subtitles.subtitle import SubtitleSet

    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        streams = []
        for _ in range(tracks):
            subtitles = out.add_stream("subrip")
            subtitles.codec_context.subtitle_header = (
                b"[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
                b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
            )
            subtitles.time_base = fractions.Fraction(1, 1000)
            streams.append(subtitles)
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for start, end, text in cues_ms:
            for track, subtitles in enumerate(streams):
                body = (f"{track}:" if track else "") + text
                packet = subtitles.codec_context.encode_subtitle(
                    SubtitleSet.create(
                        text=b"0,0,Default,,0,0,0,," + body.encode(), start=0, end=end - start, pts=start * 1000
                    )
                )
                packet.stream, packet.time_base = subtitles, subtitles.time_base
                packet.pts = packet.dts = start
                packet.duration = end - start
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def test_text_subtitle_stream_gives_timed_clean_cues(tmp_path):
    path = _video_with_text_subtitles(
        tmp_path / "ep01.mkv", [(0, 900, "Hello there"), (1000, 2500, "{\\i1}Bye{\\i0} now")]
    )
    cues, losses = subtitle_stream_cues(path)  # text needs no OCR reader
    assert losses == []
    assert cues == [
        SubtitleCue(0.0, 0.9, "Hello there", "stream_text"),
        SubtitleCue(1.0, 2.5, "Bye now", "stream_text"),
    ]


def test_every_subtitle_track_is_read_in_one_pass(tmp_path):
    path = _video_with_text_subtitles(tmp_path / "ep02.mkv", [(0, 900, "Hello"), (1000, 2000, "Bye")], tracks=2)
    cues, losses = subtitle_stream_cues(path)
    assert losses == [] and sorted(c.text for c in cues) == ["1:Bye", "1:Hello", "Bye", "Hello"]


def test_an_unreadable_container_is_a_loss_not_a_crash(tmp_path):
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"\x1a\x45\xdf\xa3 not really matroska")
    cues, losses = subtitle_stream_cues(broken)
    assert cues == [] and [loss.reason for loss in losses] == ["unreadable_video"]


def test_an_episode_gathers_sidecar_stream_and_keyframe_lines(tmp_path, reader):
    video = _video_with_text_subtitles(tmp_path / "ep03.mkv", [(0, 900, "Hello there")])
    (tmp_path / "ep03.eng.srt").write_text(
        "1\n00:00:00,000 --> 00:00:00,900\nHello there!\n\n2\n00:00:01,500 --> 00:00:02,500\nWhere were you?\n"
    )
    (tmp_path / "ep031.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nanother episode\n")
    keyframe = burn_subtitle(cv2.resize(skimage.data.coffee(), (1280, 720)), "I kept your cup.")
    cues, losses = episode_lines(video, [(0, 0.0, 1.2), (1, 1.2, 3.0)], reader, keyframes=[(2.0, keyframe)])
    assert losses == []
    lines = {shot: [(c.text, c.source) for c in found] for shot, found in cues.items()}
    assert lines == {0: [("Hello there", "stream_text")], 1: [("Where were you?", "srt"), ("I kept your cup.", "ocr")]}
