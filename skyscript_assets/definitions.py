"""The one `dg.Definitions` of the SkyScript code location.

Assets, checks, jobs, sensors and schedules are autoloaded from the domain folders of
`defs/` (ingest, video, annotation, refinement, scripts, release, reports, platform);
SKYSCRIPT_PROFILE=local|k8s adds the resources, the executor and the k8s-only jobs
(defs/platform/profiles.py).
"""

import warnings
from pathlib import Path

import dagster as dg

import skyscript_assets.defs
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.profiles import build_profile


def graph_order(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Assets in dependency order (parents first), ties broken by key."""
    by_key = {key: a for a in assets for key in a.keys}
    done: dict[dg.AssetKey, dg.AssetsDefinition] = {}

    def visit(asset: dg.AssetsDefinition) -> None:
        for dep in sorted(asset.dependency_keys, key=lambda k: k.to_user_string()):
            if dep in by_key and dep not in done:
                visit(by_key[dep])
        done.setdefault(asset.key, asset)

    for asset in sorted(assets, key=lambda a: a.key.to_user_string()):
        visit(asset)
    return list(done.values())


def build_definitions() -> tuple[dg.Definitions, list[dg.AssetsDefinition], list[dg.AssetsDefinition]]:
    """The Definitions, and the per-drama and cross-drama assets in graph order."""
    # `load_defs`, not `load_from_defs_folder`: the latter finds the defs module through
    # pyproject.toml's [tool.dg], which an installed wheel (the Docker images) does not have.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*load_defs.*deprecated", category=DeprecationWarning)
        domains = dg.load_defs(
            defs_root=skyscript_assets.defs, project_root=Path(skyscript_assets.defs.__file__).parents[2]
        )
    assets = graph_order([a for a in domains.assets or [] if isinstance(a, dg.AssetsDefinition)])
    drama_assets = [a for a in assets if a.partitions_def == dramas_partitions]
    report_assets = [a for a in assets if a.partitions_def is None]
    profile = build_profile(drama_assets)
    extra = dg.Definitions(jobs=profile.jobs, resources=profile.resources, executor=profile.executor)
    return dg.Definitions.merge(domains, extra), drama_assets, report_assets


# Per-drama assets in graph order (the CLI's demo materializes them in this order), then those
# across all dramas (not partitioned), materialized after them. `defs` is the module's one
# Definitions object (what `dagster dev -m skyscript_assets.definitions` loads).
defs, DRAMA_ASSETS, REPORT_ASSETS = build_definitions()
