"""What every catalog row records about the run that wrote it."""


import dagster as dg

from skyscript_assets.catalog import Loss
from skyscript_assets.schema import LossRecord


def provenance(context: dg.AssetExecutionContext, stage_version: str, model_id: str = "") -> dict:
    return {
        "run_id": context.run.run_id,
        "asset_key": context.asset_key.to_user_string(),
        "partition": context.partition_key,
        "stage_version": stage_version,
        "model_id": model_id,
    }


def loss_rows(records: list[LossRecord], drama_id: str, prov: dict, episode_id: str | None = None) -> list[Loss]:
    return [Loss(drama_id=drama_id, episode_id=episode_id, stage=r.stage, item=r.item, reason=r.reason,
                 detail=r.detail, **prov) for r in records]


def as_record(loss: Loss) -> LossRecord:
    return LossRecord(stage=loss.stage, item=loss.item, reason=loss.reason, detail=loss.detail)


def reasons_table(records: list[LossRecord]) -> dg.MetadataValue:
    """Losses as a Markdown table for the asset's metadata in the UI."""
    if not records:
        return dg.MetadataValue.md("No losses.")
    lines = ["| item | reason | detail |", "|---|---|---|"]
    for r in records[:50]:
        lines.append(f"| {_cell(r.item)} | {r.reason} | {_cell(r.detail)} |")
    if len(records) > 50:
        lines.append(f"| ... | | {len(records) - 50} more in the losses table |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
