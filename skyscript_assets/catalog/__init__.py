"""The catalog: what the pipeline knows about every drama, episode, shot, annotation, loss and release.

`tables` holds the SQLAlchemy tables, `store.Catalog` opens the database and writes,
`queries` is the read API, `provenance.Provenance` what every row records about its run.
"""

from skyscript_assets.catalog.provenance import Provenance
from skyscript_assets.catalog.store import Catalog, LockHeld, make_engine, upgrade
from skyscript_assets.catalog.tables import (
    Base,
    CharacterObservation,
    CharacterRow,
    Drama,
    Episode,
    EpisodeProgress,
    Flag,
    FrameAnnotationRow,
    Keyframe,
    Loss,
    ObjectDetection,
    ProvenanceColumns,
    RawMllmOutput,
    ReleasedKeyframe,
    ReleaseShard,
    ShootingScriptRow,
    Shot,
)

__all__ = [
    "Base",
    "Catalog",
    "LockHeld",
    "CharacterObservation",
    "CharacterRow",
    "Drama",
    "Episode",
    "EpisodeProgress",
    "Flag",
    "FrameAnnotationRow",
    "Keyframe",
    "Loss",
    "ObjectDetection",
    "Provenance",
    "ProvenanceColumns",
    "RawMllmOutput",
    "ReleaseShard",
    "ReleasedKeyframe",
    "ShootingScriptRow",
    "Shot",
    "make_engine",
    "upgrade",
]
