"""Per-episode bookkeeping shared by the per-episode assets: which episodes are still to do
(the rest were finished by an earlier run at the same stage version, on the same input),
and writing one episode's rows, losses and progress mark in one transaction."""

import hashlib
import json
from collections.abc import Sequence

from skyscript_assets.catalog import Base, Catalog, EpisodeProgress, Loss
from skyscript_assets.schema import LossRecord
from skyscript_assets.defs.platform.reporting import loss_rows


def input_digest(*parts) -> str:
    """A stable hash of whatever an episode's result depends on (inputs and settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def pending_episodes(db: Catalog, *, asset_key: str, partition: str, stage_version: str,
                     input_hashes: dict[str, str], redo: bool = False) -> list[str]:
    """Episode ids (in the order of `input_hashes`) without a finished, up-to-date result."""
    if redo:
        return list(input_hashes)
    done = db.done_episodes(asset_key=asset_key, partition=partition, stage_version=stage_version)
    return [episode for episode, digest in input_hashes.items()
            if episode not in done or done[episode].input_hash != digest]


def write_episode(db: Catalog, prov: dict, episode_id: str, *, rows: Sequence[Base], losses: Sequence[LossRecord],
                  tables: Sequence[type[Base]], input_hash: str, summary: dict) -> None:
    """Replace the episode's rows in `tables` (and its losses) and mark it done, atomically."""
    drama_id = prov["partition"]
    entries = loss_rows(list(losses), drama_id, prov, episode_id=episode_id)
    db.replace_episode_rows(asset_key=prov["asset_key"], partition=drama_id, episode_id=episode_id,
                            rows=[*rows, *entries], tables=[*tables, Loss],
                            progress=EpisodeProgress(drama_id=drama_id, episode_id=episode_id, input_hash=input_hash,
                                                     summary=summary, **prov))
