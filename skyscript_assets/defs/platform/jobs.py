import dagster as dg

# Every per-drama asset, in graph order; the sensor and the schedule launch this job.
drama_pipeline = dg.define_asset_job(
    name="drama_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("reports"),
    description="Every per-drama asset for one `dramas` partition.",
)
