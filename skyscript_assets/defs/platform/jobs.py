import dagster as dg

# The assets over all dramas (not partitioned): the reports and the dataset-level release. They
# run after the dramas' own assets (the CLI, the UI), never inside a drama's run.
ACROSS_DRAMAS = dg.AssetSelection.groups("reports") | dg.AssetSelection.assets("skyscript_dataset")

# Every per-drama asset, in graph order; the sensor and the schedule launch this job.
drama_pipeline = dg.define_asset_job(
    name="drama_pipeline",
    selection=dg.AssetSelection.all() - ACROSS_DRAMAS,
    description="Every per-drama asset for one `dramas` partition.",
)
