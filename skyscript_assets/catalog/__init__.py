"""The catalog: what the pipeline knows about every drama, episode, loss (and, later, shot)."""

from .store import Catalog, make_engine, upgrade
from .tables import Base, Drama, Episode, EpisodeProgress, Keyframe, Loss, Provenance, Shot

__all__ = ["Base", "Catalog", "Drama", "Episode", "EpisodeProgress", "Keyframe", "Loss", "Provenance", "Shot",
           "make_engine", "upgrade"]
