"""Provenance of a run, loss and flag rows, asset checks, and the Markdown tables the assets show in the UI."""

import warnings
from collections.abc import Sequence

import dagster as dg

from skyscript_assets.catalog import Flag, Loss, Provenance
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.schema import FlagRecord, LossRecord

TABLE_ROWS = 50  # rows of a Markdown table in the UI; the rest stay in the catalog


def provenance(context: dg.AssetExecutionContext, stage_version: str, model_id: str = "") -> Provenance:
    return Provenance(
        run_id=context.run.run_id,
        asset_key=context.asset_key.to_user_string(),
        partition=context.partition_key,
        stage_version=stage_version,
        model_id=model_id,
    )


def loss_rows(records: Sequence[LossRecord], prov: Provenance, episode_id: str | None = None) -> list[Loss]:
    return [
        Loss(
            drama_id=prov.drama_id,
            episode_id=episode_id,
            stage=r.stage,
            item=r.item,
            reason=r.reason,
            detail=r.detail,
            **prov.columns(),
        )
        for r in records
    ]


def flag_rows(records: Sequence[FlagRecord], prov: Provenance, episode_id: str | None = None) -> list[Flag]:
    return [
        Flag(
            drama_id=prov.drama_id,
            episode_id=episode_id,
            stage=r.stage,
            item=r.item,
            reason=r.reason,
            detail=r.detail,
            **prov.columns(),
        )
        for r in records
    ]


def reasons_table(records: Sequence[LossRecord | Loss | Flag]) -> dg.MetadataValue:
    """Losses (or flags) as a Markdown table for the asset's metadata in the UI."""
    if not records:
        return dg.MetadataValue.md("None.")
    lines = ["| item | reason | detail |", "|---|---|---|"]
    lines += [f"| {_cell(r.item)} | {r.reason} | {_cell(r.detail)} |" for r in records[:TABLE_ROWS]]
    if len(records) > TABLE_ROWS:
        lines.append(f"| ... | | {len(records) - TABLE_ROWS} more in the catalog |")
    return dg.MetadataValue.md("\n".join(lines))


def drama_check(name: str, *, asset: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    """An asset check of a per-drama asset, itself partitioned by drama, so the UI's Checks tab
    shows its result for each drama (not only the latest across all of them)."""
    with warnings.catch_warnings():  # partitioned check specs are a preview in the pinned Dagster 1.13
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=dramas_partitions
        )


def check(
    name: str, passed: bool, *, severity: str = "warn", why: str | None = None, **metadata
) -> dg.AssetCheckResult:
    """An asset check result whose outcome is computed by the caller; `why` is the one line the UI shows."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
        description=why,
        metadata=metadata,
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
