"""The catalog: what the pipeline knows about every drama, episode, loss (and, later, shot)."""

from .store import Catalog, make_engine, upgrade
from .tables import (Base, Drama, Episode, EpisodeProgress, FrameAnnotationRow, Keyframe, Loss, Provenance,
                     RawMllmOutput, Shot)

__all__ = ["Base", "Catalog", "Drama", "Episode", "EpisodeProgress", "FrameAnnotationRow", "Keyframe", "Loss",
           "Provenance", "RawMllmOutput", "Shot",
           "make_engine", "upgrade"]
