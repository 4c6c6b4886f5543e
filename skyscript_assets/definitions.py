"""The one `dg.Definitions` of the SkyScript code location."""

import dagster as dg

from .defs.annotation import cleaned_json, raw_mllm_json
from .defs.ingest import drama_manifest
from .defs.jobs import drama_pipeline
from .defs.landing_sensors import landing_zone_rescan, new_dramas
from .defs.vision import character_refinements, detections
from .defs.video import keyframes
from .defs.profiles import build_profile
from .defs.release import loss_rate_report, restored_scripts, script_pairs
from .defs.scripts import calibrated_shooting_scripts

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
