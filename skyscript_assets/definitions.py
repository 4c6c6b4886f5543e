"""The one `dg.Definitions` of the SkyScript code location."""

import dagster as dg

from skyscript_assets.defs.annotation.assets import cleaned_json, raw_mllm_json
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.jobs import drama_pipeline
from skyscript_assets.defs.ingest.sensors import landing_zone_rescan, new_dramas
from skyscript_assets.defs.refinement.assets import character_refinements, detections
from skyscript_assets.defs.video.assets import keyframes
from skyscript_assets.defs.platform.profiles import build_profile
from skyscript_assets.defs.release.assets import loss_rate_report, restored_scripts, script_pairs
from skyscript_assets.defs.scripts.assets import calibrated_shooting_scripts

# Per-drama assets in graph order; the CLI's demo materializes them in this order.
DRAMA_ASSETS = [drama_manifest, keyframes, raw_mllm_json, cleaned_json, detections, character_refinements,
                calibrated_shooting_scripts, restored_scripts, script_pairs]
# Across all dramas (not partitioned): materialized after the drama assets.
REPORT_ASSETS = [loss_rate_report]

# SKYSCRIPT_PROFILE=local|k8s picks resources, executor and k8s-only jobs (defs/profiles.py).
profile = build_profile(DRAMA_ASSETS)

defs = dg.Definitions(
    assets=[*DRAMA_ASSETS, *REPORT_ASSETS],
    jobs=[drama_pipeline, *profile.jobs],
    sensors=[new_dramas],
    schedules=[landing_zone_rescan],
    resources=profile.resources,
    executor=profile.executor,
)
