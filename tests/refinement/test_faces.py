import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.faces import FaceAttributeModel, HaarFaceDetector

from .conftest import shared_image
from .tiny_onnx import write_deepface_stand_ins


@pytest.fixture(scope="module")
def haar():
    return HaarFaceDetector.load()


def test_haar_cascade_finds_the_faces_of_real_photos(haar):
    hopper, astronaut = shared_image("grace_hopper.jpg"), skimage.data.astronaut()
    found = haar.detect([hopper, astronaut, skimage.data.coffee()])
    assert len(found[0]) == 1 and len(found[1]) == 1
    assert found[2] == []  # a cup of coffee has no face
    x0, y0, x1, y1 = found[1][0].box
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 180  # the astronaut's face, upper middle


def test_deepface_attributes_from_weight_files_under_deepface_home(deepface_home):
    model = FaceAttributeModel.load(deepface_home)
    assert model.not_run == {} and model.device == "cpu"
    face = skimage.data.astronaut()[67:160, 177:270]
    results = model.analyze([face, face[:, ::-1], np.full((40, 30, 3), 128, np.uint8)])
    assert len(results) == 3
    for r in results:
        assert 0 <= r.age <= 100
        assert r.gender in {"man", "woman"} and r.race in {
            "asian",
            "indian",
            "black",
            "white",
            "middle eastern",
            "latino hispanic",
        }
        assert r.emotion in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        assert sum(r.scores["emotion"].values()) == pytest.approx(1.0)
    single = model.analyze([face])[0]
    assert single.age == pytest.approx(results[0].age, abs=0.05)  # a batch of one reads like a batch of three


def test_missing_deepface_weights_are_not_run_and_nothing_is_downloaded(tmp_path):
    with pytest.raises(WeightsMissing, match="not run: no weights at"):
        FaceAttributeModel.load(tmp_path / "empty_home")
    write_deepface_stand_ins(tmp_path / "partial", only=("gender_model_weights.onnx",))
    model = FaceAttributeModel.load(tmp_path / "partial")
    assert list(model.models) == ["gender"]
    assert set(model.not_run) == {"age", "emotion", "race"}
    assert "age_model_weights.onnx" in model.not_run["age"]
    result = model.analyze([skimage.data.astronaut()[67:160, 177:270]])[0]
    assert result.gender in {"man", "woman"} and result.age is None and result.emotion is None
    assert not (tmp_path / "partial" / ".deepface" / "weights" / "age_model_weights.onnx").exists()
