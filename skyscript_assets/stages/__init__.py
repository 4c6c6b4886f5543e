"""Pipeline stages: plain Python, no Dagster import, one folder per domain (ingest, video,
annotation, refinement, scripts, release), like `defs/`.

The contract every stage keeps (`step.py`): it takes plain inputs (paths, rows, arrays),
returns its results plus the losses it met as `schema.LossRecord`s (each with a one-line
reason) and, for kept data of doubtful quality, `schema.FlagRecord`s; it never raises for
one bad item. A per-episode stage returns one `EpisodeResult` per episode. Each stage module
owns its `STAGE_VERSION`: bump it when its output for the same input changes.
"""
