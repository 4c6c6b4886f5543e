"""What every catalog row records about the run that wrote it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Provenance:
    """The run, asset, partition (the drama), stage version and model behind a row.

    `partition` and `asset_key` scope replacement: re-materializing an asset for a drama
    replaces exactly what that asset wrote for that drama."""

    run_id: str
    asset_key: str
    partition: str
    stage_version: str
    model_id: str = ""

    @property
    def drama_id(self) -> str:
        return self.partition

    def columns(self) -> dict[str, str]:
        """The ProvenanceColumns values of a row: `Table(**prov.columns(), ...)`."""
        return asdict(self)

    def with_model(self, model_id: str) -> Provenance:
        return replace(self, model_id=model_id)
