"""Which episodes a per-episode asset still has to do (the rest were finished by an earlier
run at the same stage version, on the same input)."""

from ..catalog import Catalog


def pending_episodes(db: Catalog, *, asset_key: str, partition: str, stage_version: str,
                     input_hashes: dict[str, str], redo: bool = False) -> list[str]:
    """Episode ids (in the order of `input_hashes`) without a finished, up-to-date result."""
    if redo:
        return list(input_hashes)
    done = db.done_episodes(asset_key=asset_key, partition=partition, stage_version=stage_version)
    return [episode for episode, digest in input_hashes.items()
            if episode not in done or done[episode].input_hash != digest]
