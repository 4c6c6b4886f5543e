"""The Dagster layer: thin assets, checks, sensors, schedules and resource wiring.

Nothing here knows computer vision; it calls `skyscript_assets.stages` and records what
they return in the catalog, the artifact store and the Dagster UI.
"""
