"""New dramas in the landing zone become partitions and runs.

`new_dramas` (a sensor, every minute) adds each new drama folder as a partition of
`dramas` and requests one run of `drama_pipeline` for it. `landing_zone_rescan` (a daily
schedule) catches what a sensor cannot: folders whose episodes changed after their
first run. Folders with unsafe names are never used as paths: they are logged and kept
in the losses table under stage `landing` until renamed.
"""

import hashlib

import dagster as dg

from skyscript_assets.catalog import Loss, queries
from skyscript_assets.defs.platform.jobs import drama_pipeline
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.resources import CatalogResource, LandingZone
from skyscript_assets.stages.ingest.landing import RejectedFolder, scan_landing_zone

LANDING_STAGE = "landing"


@dg.sensor(
    job=drama_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds each new drama folder of the landing zone as a `dramas` partition and runs the pipeline on it.",
)
def new_dramas(context: dg.SensorEvaluationContext, landing: LandingZone, catalog: CatalogResource) -> dg.SensorResult:
    found, rejected = scan_landing_zone(landing.resolved_url())
    cursor = _record_rejected(catalog, rejected, context.cursor)
    for folder in rejected:
        context.log.warning(f"landing zone: folder {folder.name!r} skipped: {folder.reason}")

    known = set(context.instance.get_dynamic_partitions(dramas_partitions.name))
    new = [d.drama_id for d in found if d.drama_id not in known]
    if not new:
        return dg.SensorResult(
            skip_reason=f"no new drama ({len(found)} known, {len(rejected)} rejected)", cursor=cursor
        )
    context.log.info(f"new dramas: {', '.join(new)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=drama_id, partition_key=drama_id) for drama_id in new],
        dynamic_partitions_requests=[dramas_partitions.build_add_request(new)],
        cursor=cursor,
    )


@dg.schedule(
    job=drama_pipeline,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily re-scan of the landing zone: registers missed dramas and re-runs dramas whose files changed.",
)
def landing_zone_rescan(context: dg.ScheduleEvaluationContext, landing: LandingZone, catalog: CatalogResource):
    found, _ = scan_landing_zone(landing.resolved_url())
    known = set(context.instance.get_dynamic_partitions(dramas_partitions.name))
    missing = [d.drama_id for d in found if d.drama_id not in known]
    if missing:  # schedules cannot return partition requests, so register through the instance
        context.instance.add_dynamic_partitions(dramas_partitions.name, missing)
    seen = queries.landing_fingerprints(catalog.get())
    requests = [
        dg.RunRequest(
            run_key=f"{d.drama_id}@{d.fingerprint}", partition_key=d.drama_id, tags={"skyscript/trigger": "rescan"}
        )
        for d in found
        if seen.get(d.drama_id) != d.fingerprint
    ]
    if not requests:
        return dg.SkipReason(f"all {len(found)} dramas unchanged since their last manifest")
    return requests


def _record_rejected(catalog: CatalogResource, rejected: list[RejectedFolder], cursor: str | None) -> str:
    """Keep the losses table in step with the currently rejected folders; write only on change."""
    state = hashlib.sha256(
        "\n".join(f"{r.name}|{r.reason}" for r in rejected).encode("utf-8", "surrogateescape")
    ).hexdigest()[:16]
    if state == cursor:
        return state
    catalog.get().replace_partition_rows(
        asset_key="new_dramas",
        partition="",
        tables=[Loss],
        rows=[
            Loss(
                drama_id="",
                stage=LANDING_STAGE,
                item=r.name.encode("utf-8", "backslashreplace").decode(),
                reason=r.kind,
                detail=r.reason,
                run_id="",
                asset_key="new_dramas",
                partition="",
                stage_version="1",
            )
            for r in rejected
        ],
    )
    return state
