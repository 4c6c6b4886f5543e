"""The catalog: what the pipeline knows about every drama, episode, loss (and, later, shot)."""

from .store import Catalog, make_engine, upgrade
from .tables import Base, Drama, Episode, Loss, Provenance

__all__ = ["Base", "Catalog", "Drama", "Episode", "Loss", "Provenance", "make_engine", "upgrade"]
