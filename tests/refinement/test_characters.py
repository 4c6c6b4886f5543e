import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.faces import FaceAttributeModel, FaceAttributes, HaarFaceDetector
from skyscript_assets.models.pose import BodyPose
from skyscript_assets.stages.refinement.characters import (
    RefinementModels,
    augmentations,
    conflict_rate,
    match_faces_to_people,
    mllm_age_range,
    normalize_gender,
    refine_frames,
    vote,
)

from .conftest import shared_image
from .test_depth_pose import STANDING, _skeleton


@pytest.fixture(scope="module")
def face_models(deepface_home):
    return RefinementModels(HaarFaceDetector.load(), FaceAttributeModel.load(deepface_home))


def _deepface_view(models, image):
    """What DeepFace says about the one face of `image` before any augmentation."""
    (face,) = models.faces.detect([image])[0]
    x0, y0, x1, y1 = face.box
    return models.attributes.analyze([image[y0:y1, x0:x1]])[0]


def test_a_conflict_runs_test_time_augmentation_and_deepface_wins(face_models):
    image = shared_image("grace_hopper.jpg")
    seen = _deepface_view(face_models, image)
    other_gender = "female" if seen.gender == "man" else "male"
    people = [{"type": "person", "gender": other_gender, "age": "adult", "line": ""}]
    frames, losses, flags = refine_frames(face_models, [("ep1/kf0", image, people)])
    (character,) = frames[0].characters
    assert character.face_box is not None and "gender" in character.conflicts
    assert character.tta_runs == len(augmentations(np.zeros((10, 10, 3), np.uint8))) == 6
    assert character.gender == ("male" if character.face.gender == "man" else "female")  # the vote's answer
    assert losses == [] and [flag.reason for flag in flags] == ["face_conflict"]  # kept, DeepFace adopted: a flag
    assert conflict_rate(frames) == 1.0


def test_agreement_keeps_the_mllm_values_without_augmentation(face_models):
    image = shared_image("grace_hopper.jpg")
    seen = _deepface_view(face_models, image)
    people = [{"gender": "female" if seen.gender == "woman" else "male", "age": str(round(seen.age)), "line": ""}]
    frames, losses, flags = refine_frames(face_models, [("ep1/kf0", image, people)])
    (character,) = frames[0].characters
    assert character.conflicts == [] and character.tta_runs == 0
    assert (character.gender, character.age) == (people[0]["gender"], people[0]["age"])
    assert character.face.gender == seen.gender and losses == [] and conflict_rate(frames) == 0.0


def test_more_people_than_faces_is_a_count_conflict(face_models):
    people = [{"gender": "male", "age": "adult"}, {"gender": "female", "age": "adult"}]
    frames, losses, flags = refine_frames(face_models, [("kf", skimage.data.astronaut(), people)])
    assert frames[0].face_count == 1 and frames[0].person_count == 2
    assert sum(c.face_box is not None for c in frames[0].characters) == 1
    assert "face_count_conflict" in [flag.reason for flag in flags] and not losses


def test_gender_and_age_outweigh_list_order_when_matching():
    boxes = [(10, 10, 50, 50), (200, 10, 240, 50)]  # left, right
    faces = [FaceAttributes(age=70, gender="man"), FaceAttributes(age=25, gender="woman")]
    people = [{"gender": "female", "age": "young adult"}, {"gender": "male", "age": "elderly"}]
    assert match_faces_to_people(boxes, faces, people) == {0: 1, 1: 0}
    unknown = [None, None]  # no attribute model: the MLLM's reading order decides
    assert match_faces_to_people(boxes[::-1], unknown, people) == {0: 1, 1: 0}


def test_mllm_ages_and_genders_as_the_sample_writes_them():
    assert mllm_age_range("adult") == (18, 65)
    assert mllm_age_range("Young adult") == (18, 35)
    assert mllm_age_range("34") == (29, 39) and mllm_age_range("30-40 years") == (30, 40)
    assert mllm_age_range("unknown") is None and mllm_age_range(None) is None
    assert normalize_gender("Female") == "woman" and normalize_gender("male") == "man"
    assert normalize_gender("unclear") is None


def test_vote_takes_the_median_age_and_the_most_probable_label():
    answers = [
        FaceAttributes(age=a, gender=None, scores={"gender": {"man": m, "woman": 1 - m}})
        for a, m in [(20, 0.9), (30, 0.4), (80, 0.45)]
    ]
    voted = vote(answers)
    assert voted.age == 30 and voted.gender == "man"  # mean P(man) = 0.583
    assert voted.scores["gender"]["man"] == pytest.approx(0.5833, abs=1e-3)


class _StandingPose:
    """A pose model stand-in that sees every person standing."""

    def estimate(self, images, boxes_per_image):
        return [[BodyPose(*_skeleton(**STANDING)) for _ in boxes] for boxes in boxes_per_image]


def test_depth_and_posture_per_character(face_models, depth_dir):
    models = RefinementModels.load(deepface_home=face_models.attributes.home, depth_model=depth_dir)
    assert models.pose is None and models.not_run == {"pose": "not run: no model configured"}
    models.pose = _StandingPose()
    image = skimage.data.astronaut()
    frames, _, _ = refine_frames(models, [("kf", image, [{"gender": "male", "age": "adult"}])])
    (character,) = frames[0].characters
    x0, y0, x1, y1 = character.face_box
    depth_map = models.depth.estimate([image])[0]
    assert character.depth == pytest.approx(float(np.median(depth_map[y0:y1, x0:x1])))
    assert character.posture == "standing"


def test_absent_weights_are_listed_as_not_run(tmp_path):
    models = RefinementModels.load(
        deepface_home=tmp_path, depth_model=tmp_path / "depth", pose_model=tmp_path / "pose"
    )
    assert models.attributes is None and models.depth is None and models.pose is None
    assert all(reason.startswith("not run: no weights at") for reason in models.not_run.values())
    frames, _, _ = refine_frames(models, [("kf", skimage.data.astronaut(), [{"gender": "male"}])])
    character = frames[0].characters[0]
    assert character.face_box is not None  # faces still come from the cascades in the wheel
    assert character.face is None and character.depth is None and character.posture is None
    assert set(frames[0].not_run) == {"attributes", "depth", "pose"}


def test_an_unusable_image_is_a_loss_and_the_rest_goes_on(face_models):
    frames, losses, flags = refine_frames(
        face_models,
        [("bad", np.zeros((4, 4), np.float32), []), ("good", skimage.data.astronaut(), [{"type": "person"}])],
    )
    assert [f.item for f in frames] == ["good"]
    assert [(loss.item, loss.reason) for loss in losses] == [("bad", "unusable_image")]
