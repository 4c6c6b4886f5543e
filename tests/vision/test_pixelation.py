import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.faces import HaarFaceDetector
from skyscript_assets.models.ocr import TextReader
from skyscript_assets.stages.pixelation import faces_left, mosaic, pad_box, released_copy
from skyscript_assets.stages.synthetic import burn_subtitle

from .conftest import shared_image


@pytest.fixture(scope="module")
def haar():
    return HaarFaceDetector.load()


@pytest.fixture(scope="module")
def sensitive_haar():
    """The release check looks harder than the pixelation step (fewer neighbours needed)."""
    return HaarFaceDetector.load(min_neighbors=2)


@pytest.mark.parametrize("name", ["grace_hopper.jpg", "skimage_astronaut.png"])
def test_released_copies_have_no_detectable_face(haar, sensitive_haar, name):
    image = shared_image(name)
    faces = haar.detect([image])[0]
    assert faces, "the raw photo shows a face"
    released = released_copy(image, [f.box for f in faces], [])
    assert faces_left(sensitive_haar, {name: released}) == []
    raw_report = faces_left(sensitive_haar, {name: image})
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
