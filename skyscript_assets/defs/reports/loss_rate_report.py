"""loss_rate_report: every stage's losses and flags across all dramas, beside the paper's
figures, with one check per stage that fails when the stage's loss rate is over its threshold
(stages/release/loss_report)."""

import dagster as dg

from skyscript_assets.catalog import Flag, Loss, queries
from skyscript_assets.defs.platform.reporting import TABLE_ROWS, check
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource
from skyscript_assets.stages.release import plots
from skyscript_assets.stages.release.loss_report import (
    DEFAULT_MAX_LOSS_RATES,
    PAPER_FIGURES,
    STAGES,
    STEP_STAGES,
    UNITS,
    DramaCounts,
    LossReport,
    label,
    loss_report,
)

REPORT_FILE = "loss_rate_report.md"


def check_name(stage: str) -> str:
    return f"loss_rate_{stage}"


class LossReportConfig(dg.Config):
    # Loss rate per stage above which its check fails (a stage left out keeps its default).
    max_loss_rates: dict[str, float] = dict(DEFAULT_MAX_LOSS_RATES)


def _spec(stage: str) -> dg.AssetCheckSpec:
    paper = PAPER_FIGURES.get(stage)
    return dg.AssetCheckSpec(
        check_name(stage),
        asset="loss_rate_report",
        description=f"{label(stage)}: {UNITS[stage]} lost over all dramas; fails above the run config's "
        f"max_loss_rates (default {DEFAULT_MAX_LOSS_RATES[stage]:.0%})"
        + (f"; the paper: {paper.rate:.1%} ({paper.what})" if paper else "")
        + ". A stage that did not run passes.",
    )


@dg.asset(
    deps=["script_pairs"],
    group_name="reports",
    kinds={"python", "markdown"},
    description="Every stage's losses (items dropped) and flags (quality signals on kept data) per drama and over "
    "all dramas, beside the paper's figures; a stage that did not run shows 'not run', never 0 %. One check per "
    "stage fails when its loss rate is over its threshold. Tables and charts in the UI (rates per stage, per stage "
    "and drama, over time) and a Markdown file.",
    check_specs=[_spec(stage) for stage in STAGES],
)
def loss_rate_report(
    config: LossReportConfig, catalog: CatalogResource, artifacts: ArtifactsResource
) -> dg.MaterializeResult:
    db = catalog.get()
    dramas = [DramaCounts(**queries.loss_counts(db, drama_id, STEP_STAGES)) for drama_id in queries.drama_ids(db)]
    report = loss_report(
        dramas,
        max_loss_rates=config.max_loss_rates,
        loss_reasons=queries.count_by_reason(db, Loss),
        flag_reasons=queries.count_by_reason(db, Flag),
    )
    uri = artifacts.get().write_report(report.markdown.encode(), REPORT_FILE)
    over = report.over_threshold()
    ran_at = {d.drama_id: drama.created_at for d in dramas if (drama := queries.drama(db, d.drama_id)) is not None}
    return dg.MaterializeResult(
        metadata={
            "dramas": len(dramas),
            **_pictures(report, ran_at),
            "report": dg.MetadataValue.md(report.render(max_drama_rows=TABLE_ROWS)),
            "path": dg.MetadataValue.path(uri),
            "stages_over_threshold": ", ".join(t.stage for t in over) or "-",
            "losses": sum(t.lost for t in report.totals),
            "flags": sum(t.flags for t in report.totals),
        },
        check_results=[_stage_check(report, stage) for stage in STAGES],
    )


def _pictures(report: LossReport, ran_at: dict) -> dict[str, dg.MetadataValue]:
    """Loss and flag rates per stage over all dramas (a chart); the loss rate per stage per drama
    (a coloured grid and its table); the loss rate per stage across dramas placed by when their
    manifest was built (a chart, once two dramas ran at different times)."""
    over_time = plots.loss_rate_over_time(
        {
            stage: [
                (ran_at[d], t.rate) for d, ts in report.by_drama.items() if d in ran_at for t in ts if t.stage == stage
            ]
            for stage in STAGES
        }
    )
    return {
        "loss_rates_chart": dg.MetadataValue.md(
            plots.png_markdown(
                "loss and flag rates per stage",
                plots.stage_rates_chart(
                    report.totals,
                    report.max_loss_rates,
                    title=f"Loss and flag rates per stage, {len(report.by_drama)} dramas",
                ),
            )
        ),
        "loss_rate_by_drama": dg.MetadataValue.md(
            plots.png_markdown(
                "loss rate per stage and drama",
                plots.loss_rate_grid(report.by_drama, report.max_loss_rates, stages=STAGES),
            )
            + "\n\n"
            + report.grid_markdown(TABLE_ROWS)
        ),
        "loss_rate_over_time": dg.MetadataValue.md(
            plots.png_markdown("loss rate per stage over time", over_time)
            if over_time
            else "One point in time: the curve needs dramas whose manifests were built at different times."
        ),
    }


def _stage_check(report: LossReport, stage: str) -> dg.AssetCheckResult:
    t = report.total(stage)
    why = report.why(stage)
    return check(
        check_name(stage),
        why is None,
        severity="error",
        why=why or (t.rate_text() if t.not_run else None),
        loss_rate=t.rate_text(),
        threshold=report.max_loss_rates[stage],
        given=t.given if t.given is not None else "-",
        lost=t.lost,
        flags=t.flags,
        dramas_over=len(report.dramas_over(stage)),
        not_run_dramas=f"{t.not_run_dramas} of {t.dramas}",
    )
