import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.detector import Detection, OpenVocabularyDetector
from skyscript_assets.stages.refinement.grounding import assign_boxes, ground_frames, phantom_rate


def test_tiny_grounding_dino_returns_named_boxes_in_image_coordinates(grounding_dino_dir):
    detector = OpenVocabularyDetector.load(grounding_dino_dir, box_threshold=0.0, text_threshold=0.0)
    wide, tall = skimage.data.astronaut()[:300, :], skimage.data.coffee()[:, :200]
    found = detector.detect([wide, tall], [["cup", "Remote control."], ["dog"]])
    assert len(found) == 2
    assert len(found[0]) == detector.model.config.num_queries  # thresholds 0: every query answers
    assert {d.name for d in found[0]} <= {"cup", "remote control"}
    assert {d.name for d in found[1]} == {"dog"}
    for image, detections in zip([wide, tall], found):
        height, width = image.shape[:2]
        for d in detections:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
            assert 0.0 <= d.score <= 1.0
    assert detector.device == "cpu"


def test_long_vocabularies_are_split_to_fit_the_text_encoder(grounding_dino_dir):
    detector = OpenVocabularyDetector.load(grounding_dino_dir, box_threshold=0.0, text_threshold=0.0)
    names = [
        "cup",
        "dog",
        "cat",
        "person",
        "chair",
        "remote control",
        "table",
        "lamp",
        "book",
        "phone",
        "car",
        "tree",
        "hat",
        "door",
        "a table",
        "a lamp",
    ]  # 35 prompt tokens + [CLS], [SEP] > the tiny model's 32
    first, second = detector._prompt_chunks(names)
    assert first + second == names
    found = detector.detect([skimage.data.coffee()], [names])[0]
    assert len(found) == 2 * detector.model.config.num_queries  # one pass per prompt
    assert {d.name for d in found} <= set(names)
    assert {d.name for d in found} & set(second)  # names of the second prompt are still asked


def test_thresholds_above_every_score_ground_nothing_and_flag_phantoms(grounding_dino_dir):
    detector = OpenVocabularyDetector.load(grounding_dino_dir, box_threshold=1.01)
    frames, losses, flags = ground_frames(detector, [("ep1/shot0/kf0", skimage.data.coffee(), ["cup", "saucer"])])
    assert [o.phantom for o in frames[0].objects] == [True, True]
    assert [o.name for o in frames[0].objects] == ["cup", "saucer"]  # kept, not dropped
    assert frames[0].phantom_count == 2 and phantom_rate(frames) == 1.0
    assert losses == [] and [flag.reason for flag in flags] == ["ungrounded_object"] * 2  # phantoms are kept, flagged


def test_each_object_takes_the_best_remaining_box_of_its_name():
    detections = [
        Detection("cup", (0, 0, 5, 5), 0.4),
        Detection("cup", (10, 10, 20, 20), 0.9),
        Detection("dog", (1, 1, 2, 2), 0.5),
    ]
    objects = assign_boxes(["Cup", "cup", "cup", "lamp"], detections)
    assert [o.box for o in objects] == [(10, 10, 20, 20), (0, 0, 5, 5), None, None]
    assert [o.phantom for o in objects] == [False, False, True, True]


def test_missing_weights_mean_not_run_never_a_box(tmp_path):
    with pytest.raises(WeightsMissing, match="not run: no weights at"):
        OpenVocabularyDetector.load(tmp_path / "grounding-dino-base")
    with pytest.raises(WeightsMissing, match="not run: no weights at"):
        OpenVocabularyDetector.load("IDEA-Research/not-a-cached-model")
    frames, losses, flags = ground_frames(
        None, [("kf", np.zeros((8, 8, 3), np.uint8), ["cup"])], "not run: no weights at /models/gdino"
    )
    assert frames[0].status == "not run: no weights at /models/gdino"
    assert frames[0].objects[0].phantom is None and frames[0].objects[0].box is None
    assert losses == [] and phantom_rate(frames) is None


def test_an_unusable_keyframe_is_a_loss_and_the_rest_is_grounded(grounding_dino_dir):
    detector = OpenVocabularyDetector.load(grounding_dino_dir, box_threshold=0.0, text_threshold=0.0)
    frames, losses, flags = ground_frames(
        detector, [("gray", np.zeros((20, 20), np.uint8), ["cup"]), ("rgb", skimage.data.coffee(), ["cup"])]
    )
    assert [f.item for f in frames] == ["rgb"] and frames[0].objects[0].phantom is False
    assert [(loss.item, loss.reason) for loss in losses] == [("gray", "unusable_image")]
