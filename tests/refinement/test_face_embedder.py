"""Character identities from DeepFace's ArcFace embeddings where its weights are, HOG otherwise."""

import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.faces import FaceEmbedder
from skyscript_assets.stages.scripts.shooting_scripts import character_library, identities_for_drama

from .tiny_onnx import tiny_classifier

ASTRONAUT = skimage.data.astronaut()
FACE_BOX = (177, 67, 270, 160)


def test_arcface_loads_from_deepface_home_and_embeds_in_batches(tmp_path):
    tiny_classifier(tmp_path / ".deepface" / "weights" / "arcface_weights.onnx", (112, 112, 3), 512, seed=7)
    embedder = FaceEmbedder.load(tmp_path)
    face = ASTRONAUT[67:160, 177:270]
    vectors = embedder.embed([face, face.copy(), skimage.data.coffee()[100:200, 100:200]])
    assert vectors.shape == (3, 512) and np.isfinite(vectors).all()
    assert np.allclose(vectors[0], vectors[1]) and not np.allclose(vectors[0], vectors[2])
    assert embedder.embed([]).shape == (0, 512)


def test_missing_arcface_weights_are_not_run(tmp_path):
    with pytest.raises(WeightsMissing, match=r"not run: no weights at .*arcface_weights\.onnx"):
        FaceEmbedder.load(tmp_path)


class _Embedder:
    """Embeddings chosen by the test: the mean red level decides who a face is."""

    def embed(self, crops):
        return np.array([[1.0, 0.0] if crop[..., 0].mean() > 128 else [0.0, 1.0] for crop in crops], np.float32)


def test_identities_use_the_embedder_and_the_library_keeps_first_appearances():
    red = np.zeros((200, 200, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((200, 200, 3), np.uint8)
    blue[..., 2] = 220
    box = (50, 50, 150, 150)
    faces = [
        ("ep1/kf0001", 0, red, box, "I'm Emma.", (0, 4.0)),
        ("ep1/kf0000", 0, blue, box, None, (0, 1.0)),
        ("ep2/kf0000", 0, red, box, None, (1, 0.5)),
        ("ep2/kf0000", 1, blue, box, "My name is Leo.", (1, 0.5)),
    ]
    identities = identities_for_drama(faces, _Embedder())
    assert identities.embedding_kind == "deepface"
    assert identities.identity_of[("ep1/kf0000", 0)] == ("char-1", "Leo")  # first seen, first id
    assert identities.identity_of[("ep1/kf0001", 0)] == identities.identity_of[("ep2/kf0000", 0)] == ("char-2", "Emma")
    library = character_library(identities)
    assert [(e.character_id, e.name, e.named_from, e.observations, e.first_item, e.first_time_s) for e in library] == [
        ("char-1", "Leo", "dialogue", 2, "ep1/kf0000", 1.0),
        ("char-2", "Emma", "dialogue", 2, "ep1/kf0001", 4.0),
    ]
    assert all(e.face_jpeg.startswith(b"\xff\xd8") for e in library)
    assert identities_for_drama(faces).embedding_kind == "hog"  # without an embedder


def test_a_name_card_next_to_a_face_names_the_character():
    from skyscript_assets.stages.scripts.identities import looks_like_name, name_caption

    assert looks_like_name("Emma") and looks_like_name("Li Wei") and looks_like_name("林晓")
    assert (
        not looks_like_name("I never left.")
        and not looks_like_name("CEO of the year ltd")
        and not looks_like_name("Sorry")
    )
    face = (100, 100, 200, 200)
    texts = [
        ("Li Wei", (220, 150, 320, 180)),
        ("Emma", (600, 40, 680, 70)),  # near the face / far away
        ("Nora", (120, 900, 200, 930)),
        ("You came back.", (110, 210, 260, 240)),
    ]  # in the subtitle band / a sentence
    assert name_caption(texts, face, image_height=1000) == "Li Wei"
    assert name_caption(texts[1:], face, image_height=1000) is None
    red = np.zeros((200, 200, 3), np.uint8)
    red[..., 0] = 220
    faces = [
        ("ep1/kf0000", 0, red, (50, 50, 150, 150), None, (0, 1.0), "Li Wei"),
        ("ep1/kf0001", 0, red, (50, 50, 150, 150), "I'm Emma.", (0, 2.0), None),
    ]
    identities = identities_for_drama(faces, _Embedder())
    assert [(c.name, c.named_from) for c in identities.characters] == [
        ("Li Wei", "caption")
    ]  # a caption beats dialogue
