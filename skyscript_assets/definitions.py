"""The one `dg.Definitions` of the SkyScript code location."""

import dagster as dg

from .defs.annotation import cleaned_json, raw_mllm_json
from .defs.ingest import drama_manifest
from .defs.jobs import drama_pipeline
from .defs.landing_sensors import landing_zone_rescan, new_dramas
from .defs.resources import local_resources
from .defs.vision import character_refinements, detections
from .defs.video import keyframes

# Per-drama assets in graph order; the CLI's demo materializes them in this order.
DRAMA_ASSETS = [drama_manifest, keyframes, raw_mllm_json, cleaned_json, detections, character_refinements]

defs = dg.Definitions(
    assets=DRAMA_ASSETS,
    jobs=[drama_pipeline],
    sensors=[new_dramas],
    schedules=[landing_zone_rescan],
    resources=local_resources(),
)
