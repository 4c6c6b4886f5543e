"""Fixtures of the vision tests: tiny models built once per session, the shared photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from .tiny_models import tiny_depth_anything, tiny_grounding_dino, tiny_vitpose
from .tiny_onnx import write_deepface_stand_ins

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def grounding_dino_dir(tmp_path_factory) -> Path:
    return tiny_grounding_dino(tmp_path_factory.mktemp("grounding_dino"))


@pytest.fixture(scope="session")
def depth_dir(tmp_path_factory) -> Path:
    return tiny_depth_anything(tmp_path_factory.mktemp("depth_anything"))


@pytest.fixture(scope="session")
def vitpose_dir(tmp_path_factory) -> Path:
    return tiny_vitpose(tmp_path_factory.mktemp("vitpose"))


@pytest.fixture(scope="session")
def deepface_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("deepface_home")
    write_deepface_stand_ins(home)
    return home


def shared_image(name: str) -> np.ndarray:
    """An RGB photo from ../shared/data/images; the test skips when it is absent."""
    path = SHARED_DATA / "images" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
