"""drama_manifest: the episodes of one drama, probed, deduplicated and ordered."""

import dagster as dg

from skyscript_assets.catalog import Drama, Episode, Loss, Provenance
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.reporting import check, drama_check, loss_rows, provenance, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource, LandingZone
from skyscript_assets.stages.ingest import manifest as manifest_stage
from skyscript_assets.stages.ingest.landing import DramaFolder, find_drama
from skyscript_assets.stages.ingest.manifest import Manifest, build_manifest
from skyscript_assets.stages.step import version_of

# Above this share of unusable files the drama is worth a look (a scrape gone wrong).
MANIFEST_LOSS_WARN_RATE = 0.10


@dg.asset(
    partitions_def=dramas_partitions,
    group_name="ingest",
    kinds={"python", "video"},
    description="Episodes of one drama: probed with PyAV (duration, fps, VFR, geometry, audio, "
    "subtitle streams), hashed, deduplicated and ordered by episode number.",
    check_specs=[
        drama_check(
            "has_episodes",
            asset="drama_manifest",
            blocking=True,
            description="At least one readable episode; otherwise nothing downstream can run.",
        ),
        drama_check(
            "file_loss_rate",
            asset="drama_manifest",
            description=f"Share of files that are not usable episodes (warns above {MANIFEST_LOSS_WARN_RATE:.0%}).",
        ),
    ],
)
def drama_manifest(
    context: dg.AssetExecutionContext, landing: LandingZone, catalog: CatalogResource, artifacts: ArtifactsResource
) -> dg.MaterializeResult:
    drama_id = context.partition_key
    try:
        folder = find_drama(landing.resolved_url(), drama_id)
    except (FileNotFoundError, ValueError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    manifest = build_manifest(folder.uri, drama_id)
    prov = provenance(context, version_of(manifest_stage))
    catalog.get().replace_partition_rows(
        asset_key=prov.asset_key, partition=drama_id, rows=_rows(manifest, folder, prov), tables=[Drama, Episode, Loss]
    )
    manifest_uri = artifacts.get().write_json(
        manifest.document(folder.uri), drama_id, "drama_manifest", "manifest.json"
    )
    for loss in manifest.losses:
        context.log.warning(f"loss [{loss.reason}] {loss.detail}")
    context.log.info(
        f"{drama_id}: {len(manifest.episodes)} episodes, {manifest.duration_s:.1f} s, {len(manifest.losses)} losses"
    )
    return _report(manifest, manifest_uri)


def _rows(manifest: Manifest, folder: DramaFolder, prov: Provenance) -> list:
    drama = Drama(
        drama_id=manifest.drama_id,
        title=manifest.info.title or manifest.drama_id,
        language=manifest.info.language,
        source=manifest.info.source,
        landing_uri=folder.uri,
        landing_fingerprint=folder.fingerprint,
        episode_count=len(manifest.episodes),
        **prov.columns(),
    )
    episodes = [
        Episode(
            drama_id=manifest.drama_id,
            episode_id=e.episode_id,
            episode_number=e.episode_number,
            position=e.position,
            file_name=e.file_name.encode("utf-8", "backslashreplace").decode(),
            uri=e.uri,
            size_bytes=e.size_bytes,
            sha256=e.sha256,
            **e.probe.as_dict(),
            **prov.columns(),
        )
        for e in manifest.episodes
    ]
    return [drama, *episodes, *loss_rows(manifest.losses, prov)]


def _report(manifest: Manifest, manifest_uri: str) -> dg.MaterializeResult:
    kept, files = len(manifest.episodes), manifest.files
    loss_rate = (files - kept) / files if files else 1.0
    return dg.MaterializeResult(
        metadata={
            "episodes": kept,
            "duration_s": round(manifest.duration_s, 3),
            "losses": len(manifest.losses),
            "file_loss_rate": round(loss_rate, 4),
            "vfr_episodes": sum(e.probe.is_vfr for e in manifest.episodes),
            "episode_table": _episode_table(manifest.episodes),
            "loss_reasons": reasons_table(manifest.losses),
            "manifest": dg.MetadataValue.path(manifest_uri),
        },
        check_results=[
            check(
                "has_episodes",
                kept > 0,
                severity="error",
                episodes=kept,
                why=None if kept else f"{manifest.drama_id} has no readable episode",
            ),
            check(
                "file_loss_rate",
                loss_rate <= MANIFEST_LOSS_WARN_RATE,
                loss_rate=round(loss_rate, 4),
                lost_files=files - kept,
                files=files,
            ),
        ],
    )


def _episode_table(episodes) -> dg.MetadataValue:
    lines = ["| # | episode | duration s | fps | VFR | display | codec | audio |", "|---|---|---|---|---|---|---|---|"]
    for e in episodes[:100]:
        p = e.probe
        lines.append(
            f"| {e.position + 1} | {e.episode_id} | {p.duration_s:.2f} | {p.avg_fps:.2f} | "
            f"{'yes' if p.is_vfr else 'no'} | {p.display_width}x{p.display_height} | {p.codec} | "
            f"{p.audio_codec or '-'} |"
        )
    return dg.MetadataValue.md("\n".join(lines))
