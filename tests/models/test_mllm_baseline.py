"""The offline `baseline` annotator and the pre-extraction stage around a backend."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.mllm import MllmReply, MllmRequest, load_backend
from skyscript_assets.models.mllm.baseline import MODEL_ID, shot_size
from skyscript_assets.schema import FrameAnnotation, ShotType
from skyscript_assets.stages.annotation.annotate import KeyframeInput, RawAnnotation, annotate_keyframes, shot_batches
from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output

IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "images"


def encode(bgr: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", bgr)
    assert ok
    return data.tobytes()


def with_subtitle(bgr: np.ndarray, text: str) -> np.ndarray:
    """Burn a subtitle into the lower part of a frame, as short dramas do."""
    canvas = cv2.copyMakeBorder(bgr, 0, 90, 0, 0, cv2.BORDER_CONSTANT, value=(20, 20, 20))
    cv2.putText(canvas, text, (30, canvas.shape[0] - 35), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    return canvas


@pytest.fixture(scope="module")
def baseline():
    backend = load_backend("baseline")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def test_baseline_finds_the_astronaut_reads_the_subtitle_and_cleans(baseline, astronaut):
    frame = with_subtitle(astronaut, "Where were you last night")
    [reply] = baseline.generate([MllmRequest((encode(frame),), "ignored by the baseline")])
    cleaned = clean_raw_output(reply.text, ["kf"])
    assert cleaned.outcome is CleanOutcome.PARSED_AS_IS
    annotation = cleaned.frames[0]
    assert len(annotation.people) == 1
    person = annotation.people[0]
    assert person.shot_type is ShotType.MEDIUM  # face ~18 % of the height: waist-up framing
    assert person.line is not None and "night" in person.line.lower()
    assert person.emotion is None and person.vad is None and person.gender is None  # cannot see: null
    assert annotation.objects == [] and annotation.bgm is None and annotation.scene is None
    assert baseline.model_id == MODEL_ID == "baseline-cv/1"


def test_baseline_on_grace_hopper_is_a_close_up(baseline):
    path = IMAGES / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("../shared/data/images/grace_hopper.jpg is absent")
    [reply] = baseline.generate([MllmRequest((path.read_bytes(),), "")])
    annotation = clean_raw_output(reply.text, ["kf"]).frames[0]
    assert [p.shot_type for p in annotation.people] == [ShotType.CLOSE_UP]
    assert annotation.people[0].line is None  # no text in the picture


def test_baseline_on_an_empty_dark_frame_sees_nobody(baseline):
    dark = np.full((360, 640, 3), 15, np.uint8)
    [reply] = baseline.generate([MllmRequest((encode(dark),), "")])
    annotation = clean_raw_output(reply.text, ["kf"]).frames[0]
    assert annotation.people == [] and "dark" in annotation.scene_description


def test_baseline_batch_with_a_broken_image_fails_only_that_request(baseline, astronaut):
    replies = baseline.generate([MllmRequest((b"\x00broken",), ""), MllmRequest((encode(astronaut),) * 2, "")])
    assert replies[0].text is None and "unreadable image" in replies[0].error
    assert len(json.loads(replies[1].text)["frames"]) == 2


@pytest.mark.parametrize(
    "share, size", [(0.6, "extreme_close_up"), (0.3, "close_up"), (0.15, "medium"), (0.07, "full"), (0.01, "wide")]
)
def test_shot_size_from_face_share(share, size):
    assert shot_size(share) == size


# --- the stage around any backend ------------------------------------------------------------


class RecordingBackend:
    """Answers each request with one frame per image, except requests it is told to fail."""

    model_id = "recording/0"
    needs_gpu = False

    def __init__(self, fail_when_images: int | None = None):
        self.requests: list[MllmRequest] = []
        self.fail_when_images = fail_when_images

    def generate(self, requests):
        self.requests.extend(requests)
        return [
            MllmReply(None, error="HTTP 500 after retries")
            if len(r.images) == self.fail_when_images
            else MllmReply(json.dumps({"frames": [{"scene_description": "x"}] * len(r.images)}), seconds=0.1)
            for r in requests
        ]

    def close(self):
        pass


def keyframes(tmp_path, layout: dict[str, int]) -> list[KeyframeInput]:
    out = []
    for shot, count in layout.items():
        for k in range(count):
            path = tmp_path / f"{shot}_{k}.jpg"
            path.write_bytes(encode(np.full((16, 16, 3), 40 * k, np.uint8)))
            out.append(KeyframeInput(item=f"ep1/{shot}/kf{k}", shot_key=f"ep1/{shot}", uri=str(path), time_s=k))
    return out


def test_shot_batches_never_mix_shots():
    kfs = [KeyframeInput(f"i{n}", shot, "u") for n, shot in enumerate("aaaaabbc")]
    assert [[k.item for k in b] for b in shot_batches(kfs, 2)] == [
        ["i0", "i1"],
        ["i2", "i3"],
        ["i4"],
        ["i5", "i6"],
        ["i7"],
    ]


def test_annotate_keyframes_keeps_verbatim_text_and_provenance(tmp_path):
    backend = RecordingBackend()
    results, losses = annotate_keyframes(backend, keyframes(tmp_path, {"s1": 3, "s2": 1}), max_images_per_request=2)
    assert losses == []
    assert [r.items for r in results] == [("ep1/s1/kf0", "ep1/s1/kf1"), ("ep1/s1/kf2",), ("ep1/s2/kf0",)]
    assert all(
        isinstance(r, RawAnnotation) and r.model_id == "recording/0" and r.prompt_version == "frame_annotation/v2"
        for r in results
    )
    assert results[0].text == backend_reply_text(2)
    assert [len(r.images) for r in backend.requests] == [2, 1, 1]
    assert "2 image(s)" in backend.requests[0].prompt and '"frames"' in backend.requests[0].prompt
    cleaned = clean_raw_output(results[0].text, results[0].items)
    assert all(isinstance(f, FrameAnnotation) for f in cleaned.frames)


def backend_reply_text(images: int) -> str:
    return json.dumps({"frames": [{"scene_description": "x"}] * images})


def test_failed_requests_and_unreadable_images_are_losses_per_keyframe(tmp_path):
    kfs = keyframes(tmp_path, {"s1": 2, "s2": 3})
    Path(kfs[2].uri).unlink()  # s2/kf0 vanished from the artifact store
    results, lost = annotate_keyframes(RecordingBackend(fail_when_images=2), kfs, max_images_per_request=3)
    assert all(isinstance(r, RawAnnotation) for r in results)
    losses = {(r.item, r.reason) for r in lost}
    assert losses == {
        ("ep1/s2/kf0", "unreadable_image"),
        ("ep1/s1/kf0", "mllm_request_failed"),
        ("ep1/s1/kf1", "mllm_request_failed"),
        ("ep1/s2/kf1", "mllm_request_failed"),
        ("ep1/s2/kf2", "mllm_request_failed"),
    }
    assert all(r.stage == "raw_mllm_json" and "\n" not in r.detail for r in lost)
    # a failed request may succeed next time (transient); an image that is gone will not
    assert {r.item for r in lost if r.transient} == {
        item for item, reason in losses if reason == "mllm_request_failed"
    }


def test_images_smaller_than_the_body_detector_window_do_not_crash():
    import cv2
    import numpy as np

    from skyscript_assets.models.mllm import MllmRequest
    from skyscript_assets.models.mllm.baseline import BaselineAnnotator

    tiny = cv2.imencode(".jpg", np.full((64, 96, 3), 120, np.uint8))[1].tobytes()
    [reply] = BaselineAnnotator(ocr=False).generate([MllmRequest(images=[tiny], prompt="x")])
    assert reply.text and '"people": []' in reply.text
