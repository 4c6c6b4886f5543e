"""The catalog: what the pipeline knows about every drama, episode, loss (and, later, shot)."""

from skyscript_assets.catalog.store import Catalog, make_engine, upgrade
from skyscript_assets.catalog.tables import (
    Base,
    CharacterObservation,
    Drama,
    Episode,
    EpisodeProgress,
    FrameAnnotationRow,
    Keyframe,
    Loss,
    ObjectDetection,
    Provenance,
    RawMllmOutput,
    ReleasedKeyframe,
    ReleaseShard,
    Shot,
    ShootingScriptRow,
    CharacterRow,
)

__all__ = ["Base", "Catalog", "CharacterObservation", "Drama", "Episode", "EpisodeProgress", "FrameAnnotationRow", "Keyframe", "Loss",
           "ObjectDetection", "Provenance", "RawMllmOutput", "ReleasedKeyframe", "ReleaseShard", "Shot", "ShootingScriptRow", "CharacterRow",
           "make_engine", "upgrade"]
