"""Production parity: the same drama, run once with the local profile (SQLite catalog, landing
zone and artifacts in folders) and once as the k8s profile runs it (landing zone and artifacts
on S3-compatible storage, a moto server here; the catalog and the Dagster instance on the real
Postgres), gives the same catalog rows and the same artifact bytes, paths aside.

The drama is two episodes rendered like the demo's, with what the production profile used to
skip without a word: an audio track with music (ep01), an `.srt` sidecar (ep01), burned-in
subtitles (OCR), camera movement (pans and zooms), a face (the astronaut), and the reviewers'
export in the landing zone (the calibration loop of `skyscript demo`). Every drama asset runs
through `runner.materialize_drama`, as the CLI and the UI run them, then the loss report and
the exports.

Compared: every catalog table row by row (ids, run ids, timestamps, timings and the roots of
URIs left out), every artifact file by its path under the root (bytes; Parquet by its rows when
its bytes differ, since rows carry URIs; text with the roots replaced), the asset checks'
outcomes and the assets' metadata (counts and not-run reasons; timings and paths left out), and
the exports of the release.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from fractions import Fraction
from pathlib import Path

import av
import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
import skimage.data
from sqlalchemy import create_engine, select, text

from skyscript_assets import settings
from skyscript_assets.catalog.tables import Base
from skyscript_assets.defs.platform.profiles import k8s_resources
from skyscript_assets.defs.platform.resources import (
    ArtifactsResource,
    CatalogResource,
    MllmResource,
    RestorationLlmResource,
    VisionModelsResource,
    local_resources,
)
from skyscript_assets.defs.platform.runner import materialize_drama, register_drama
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.stages.release import plots
from skyscript_assets.stages.release.export import EXPORT_FORMATS, export_release
from skyscript_assets.stages.release.loss_report import STAGES
from skyscript_assets.stages.scripts.assemble import REVIEWS_FOLDER
from skyscript_assets.stages.scripts.calibration import simulated_review
from skyscript_assets.storage import open_fs

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DRAMA = "parity-drama"
# moto keeps its buckets per process, across servers: names of their own keep other tests' objects out
LANDING_BUCKET, ARTIFACTS_BUCKET = "parity-landing", "parity-artifacts"
S3_LANDING, S3_ARTIFACTS = f"s3://{LANDING_BUCKET}", f"s3://{ARTIFACTS_BUCKET}/v1"
REVIEWED = ("calibrated_shooting_scripts", "restored_scripts", "script_pairs")  # what a review export re-runs
RUN_CONFIG = {"keyframes": {"workers": 1}}  # two shared cores
SRT = """1
00:00:04,600 --> 00:00:06,400
Ground control, we are go.

2
00:00:07,000 --> 00:00:08,500
<i>Copy that.</i>
"""
# identity, run, time, timing; and the landing folder's change marker (names, sizes and write
# times of its files: mtime on a disk, LastModified/ETag on an object store) and the per-episode
# input hashes, which hash the inputs' URIs (tests/reliability/test_determinism.py ignores both too)
IGNORED_COLUMNS = {"id", "run_id", "created_at", "seconds", "landing_fingerprint", "input_hash"}
# the same in JSON artifacts: the dataset manifest fingerprints each drama's shards by the
# catalog's record of them (URI, run id), to tell a new run without reading the shards
INPUT_IDENTITY = {"landing_fingerprint", "input_hash", "fingerprint"}
# in JSON summaries and metadata: timings, and pictures whose axis is the time the dramas ran
TIMING_KEYS = ("seconds", "per_s", "wall", "elapsed", "over_time")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?")  # release dates


# --- the drama ----------------------------------------------------------------------------------


def with_music(video: Path, out: Path, *, bpm: float = 120.0, rate: int = 48_000) -> None:
    """`video` remuxed into `out` with an AAC track: a sustained chord and a click on every beat."""
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate)
        aout.layout = "mono"
        t = np.arange(int(float(vin.duration * vin.time_base) * rate)) / rate
        chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.15
        clicks = np.zeros_like(t)
        for start in range(0, len(t), int(rate * 60 / bpm)):
            n = min(1200, len(t) - start)
            clicks[start : start + n] += np.hanning(2400)[:n] * 0.8 * np.sin(2 * np.pi * 2000 * t[start : start + n])
        samples = (chord * (1 + 0.5 * (clicks != 0)) + clicks).astype(np.float32)
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[i : i + 1024].reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            dst.mux(aout.encode(frame))
        dst.mux(aout.encode())


def write_parity_drama(folder: Path) -> None:
    """Two episodes as the demo renders them (9:16, cuts, a fade, pans, zooms, burned subtitles),
    ep01 with music and an .srt sidecar, and drama.json."""
    astronaut, rocket, coffee, chelsea = (
        getattr(skimage.data, n)() for n in ("astronaut", "rocket", "coffee", "chelsea")
    )
    folder.mkdir(parents=True)
    silent = folder.parent / "ep01-silent.mp4"
    render_video(
        silent,
        [
            ShotSpec(astronaut, 2.5, "zoom", subtitle="Commander, the launch window opens at dawn."),
            ShotSpec(rocket, 2.0, "pan", "cut"),
            ShotSpec(astronaut, 4.0, "static", "cut"),
        ],
        size=(360, 640),
    )
    with_music(silent, folder / "ep01.mp4")
    silent.unlink()
    (folder / "ep01.srt").write_text(SRT, encoding="utf-8")
    render_video(
        folder / "ep02.mp4",
        [
            ShotSpec(coffee, 2.0, "static", subtitle="You came back. I kept your cup."),
            ShotSpec(chelsea, 2.0, "pan", "fade"),
            ShotSpec(coffee, 2.0, "zoom", "cut", subtitle="I'm Emma. I never left."),
        ],
        size=(360, 640),
    )
    (folder / "drama.json").write_text(json.dumps({"title": "Parity", "language": "en", "source": "scikit-image"}))


# --- one run of a profile -----------------------------------------------------------------------


def run_profile(instance: dg.DagsterInstance, resources: dict, artifacts_url: str, landing_url: str) -> dict:
    """Every drama asset, the calibration loop (a simulated reviewer's export put in the landing
    zone, the reviewed assets run again), the loss report and the exports; returns what each
    asset reported."""
    from skyscript_assets.definitions import DRAMA_ASSETS, REPORT_ASSETS

    register_drama(instance, DRAMA)
    outcomes = {
        o.asset: o
        for o in materialize_drama(
            DRAMA,
            DRAMA_ASSETS,
            instance=instance,
            resources=resources,
            asset_config=RUN_CONFIG,
            on_progress=lambda _: None,
        )
    }
    assert all(o.ok for o in outcomes.values()), {a: o.error for a, o in outcomes.items() if not o.ok}

    fs, root = open_fs(artifacts_url)
    tasks = [
        task
        for path in sorted(fs.glob(f"{root}/{DRAMA}/calibrated_shooting_scripts/calibration/*.tasks.json"))
        for task in json.loads(fs.cat_file(path))
    ]
    assert tasks
    landing_fs, landing_root = open_fs(landing_url)
    landing_fs.makedirs(f"{landing_root}/{DRAMA}/{REVIEWS_FOLDER}", exist_ok=True)
    landing_fs.pipe_file(
        f"{landing_root}/{DRAMA}/{REVIEWS_FOLDER}/reviewer.json",
        json.dumps(simulated_review(tasks, corrections=1), indent=1).encode(),
    )
    reviewed = [a for a in DRAMA_ASSETS if a.key.to_user_string() in REVIEWED]
    outcomes |= {
        o.asset: o
        for o in materialize_drama(DRAMA, reviewed, instance=instance, resources=resources, on_progress=lambda _: None)
    }
    outcomes |= {
        o.asset: o
        for o in materialize_drama(
            None, REPORT_ASSETS, instance=instance, resources=resources, on_progress=lambda _: None
        )
    }
    assert all(o.ok for o in outcomes.values()), {a: o.error for a, o in outcomes.items() if not o.ok}
    return outcomes


def export_all(resources: dict, out: Path) -> None:
    catalog, artifacts = resources["catalog"], resources["artifacts"]
    for fmt in EXPORT_FORMATS:
        export_release(catalog.get(), artifacts.get(), DRAMA, fmt, out / fmt)


# --- comparing ----------------------------------------------------------------------------------


class Roots:
    """Replaces the roots of one profile's URIs and paths by placeholders."""

    def __init__(self, artifacts: str, landing: str):
        self.pairs = []
        for placeholder, url in (("<artifacts>", artifacts), ("<landing>", landing)):
            bare = url.split("://", 1)[-1]
            self.pairs += [(url, placeholder), (bare, placeholder)]
        self.pairs.append(("/data/local-files/?d=", "<artifacts>/"))  # Label Studio's route to the local root

    def text(self, value: str) -> str:
        for old, new in self.pairs:
            value = value.replace(old, new)
        return TIMESTAMP.sub("<time>", value)

    def value(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items() if not any(t in k for t in TIMING_KEYS)}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return value


def catalog_rows(url: str, roots: Roots) -> dict[str, list[str]]:
    """Every table's rows as sorted canonical JSON, without the ignored columns."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = {}
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if c.name not in IGNORED_COLUMNS]
                rows = conn.execute(select(*columns)).mappings().all()
                tables[table.name] = sorted(
                    json.dumps(roots.value(dict(r)), sort_keys=True, default=str) for r in rows
                )
            return tables
    finally:
        engine.dispose()


def artifact_files(url: str) -> dict[str, bytes]:
    fs, root = open_fs(url)
    return {path[len(root) + 1 :]: fs.cat_file(path) for path in sorted(fs.find(root))}


def same_file(name: str, local: bytes, remote: bytes, local_roots: Roots, remote_roots: Roots) -> bool:
    if local == remote:
        return True
    if name.endswith(".parquet"):  # rows that carry URIs: compared as rows, roots replaced
        import io

        def rows(data: bytes, roots: Roots):
            table = pq.read_table(io.BytesIO(data))
            return table.schema.remove_metadata(), roots.value(table.to_pylist())

        return rows(local, local_roots) == rows(remote, remote_roots)
    if name.endswith(".json"):  # without the fingerprints of the sources' catalog records (run ids, URIs)
        return local_roots.value(_without_fingerprints(json.loads(local))) == remote_roots.value(
            _without_fingerprints(json.loads(remote))
        )
    try:
        return local_roots.text(local.decode()) == remote_roots.text(remote.decode())
    except UnicodeDecodeError:
        return False


def _without_fingerprints(value):
    if isinstance(value, dict):
        return {k: _without_fingerprints(v) for k, v in value.items() if k not in INPUT_IDENTITY}
    if isinstance(value, list):
        return [_without_fingerprints(v) for v in value]
    return value


def png_sizes(markdown: str) -> list[tuple[int, int]]:
    """The sizes of the PNGs held as data: URIs in a Markdown metadata value."""
    return [
        plots.png_size(base64.b64decode(data)) for data in re.findall(r"data:image/png;base64,([\w+/=]+)", markdown)
    ]


def comparable_metadata(outcome, roots: Roots) -> dict:
    return {k: roots.value(v) for k, v in outcome.metadata.items() if not any(t in k for t in TIMING_KEYS)}


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture
def s3_server(monkeypatch):
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    import fsspec
    from s3fs import S3FileSystem

    # s3fs caches filesystems by their arguments, not by the endpoint in the environment: a cached one
    # would still point at an earlier test's (stopped) server
    S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(LANDING_BUCKET)
    fs.mkdir(ARTIFACTS_BUCKET)
    try:
        yield fs
    finally:
        server.stop()
        S3FileSystem.clear_instance_cache()


def postgres_instance(postgres_url: str, home: Path) -> dg.DagsterInstance:
    """A Dagster instance whose runs, events and schedules live in Postgres, as in the cluster."""
    home.mkdir(parents=True)
    url = postgres_url.replace("postgresql+psycopg2", "postgresql")
    (home / "dagster.yaml").write_text(f'storage:\n  postgres:\n    postgres_url: "{url}"\n')
    return dg.DagsterInstance.from_config(str(home))


def test_s3_and_postgres_give_the_same_rows_and_bytes_as_the_local_profile(
    skyscript_home, postgres_url, s3_server, tmp_path, monkeypatch
):
    started = time.perf_counter()
    local_landing = Path(settings.landing_url())
    write_parity_drama(local_landing / DRAMA)
    for path in sorted((local_landing / DRAMA).iterdir()):
        s3_server.put(str(path), f"{LANDING_BUCKET}/{DRAMA}/{path.name}")

    # the local profile: SQLite, folders
    local = local_resources()
    local_db, local_artifacts = local["catalog"].resolved_url(), local["artifacts"].resolved_root()
    local_roots = Roots(local_artifacts, str(local_landing))
    with dg.DagsterInstance.ephemeral() as instance:
        local_outcomes = run_profile(instance, local, local_artifacts, str(local_landing))
    export_all(local, tmp_path / "export-local")

    # the k8s profile's locations (resolved from the environment when each run starts) with the
    # local profile's models: there is no model server here, and the models must be the same
    for name, value in {
        "SKYSCRIPT_DATABASE_URL": postgres_url,
        "SKYSCRIPT_LANDING_URL": S3_LANDING,
        "SKYSCRIPT_ARTIFACTS_URL": S3_ARTIFACTS,
    }.items():
        monkeypatch.setenv(name, value)
    remote = {
        **k8s_resources(),
        "mllm": MllmResource(),
        "vision": VisionModelsResource(),
        "restoration_llm": RestorationLlmResource(),
    }
    assert isinstance(remote["artifacts"].root_url, dg.EnvVar)
    remote_roots = Roots(S3_ARTIFACTS, S3_LANDING)
    # the local run's folders moved away meanwhile: whatever still read a local path would fail
    aside = tmp_path / "aside"
    aside.mkdir()
    for folder in (local_landing, Path(local_artifacts)):
        folder.rename(aside / folder.name)
    with postgres_instance(postgres_url, tmp_path / "dagster_home") as instance:
        remote_outcomes = run_profile(instance, remote, S3_ARTIFACTS, S3_LANDING)
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    for folder in (local_landing, Path(local_artifacts)):
        (aside / folder.name).rename(folder)
    resolved = {
        "catalog": CatalogResource(database_url=postgres_url),
        "artifacts": ArtifactsResource(root_url=S3_ARTIFACTS),
    }
    export_all(resolved, tmp_path / "export-remote")

    # the local run did exercise what the S3 run used to skip
    local_rows = catalog_rows(local_db, local_roots)
    scripts = [json.loads(r)["script"] for r in local_rows["shooting_scripts"]]
    shots = [shot for script in scripts for shot in script["shots"]]
    assert any((shot.get("music") or {}).get("tempo_bpm") for shot in shots), "no music measured on ep01's track"
    assert {shot.get("camera_movement") for shot in shots} - {None, "static"}, "no camera movement measured"
    people = [json.loads(r)["refinement"] for r in local_rows["character_observations"]]
    assert any(p.get("line_source") == "subtitle" and "Ground control" in p["line"] for p in people), "no .srt line"
    assert local_rows["characters"], "no face became a character"
    assert local_outcomes["calibrated_shooting_scripts"].metadata["review_files"] == 1
    assert local_outcomes["calibrated_shooting_scripts"].metadata["measures_not_run"] == 1  # music of the silent ep02

    # the pictures an operator looks at: PNGs of the charts' sizes (tests/test_plots.py tests the drawing)
    scripts_meta, pairs_meta = (
        local_outcomes["calibrated_shooting_scripts"].metadata,
        local_outcomes["script_pairs"].metadata,
    )
    sizes = {shot.get("shot_size") or "unknown" for shot in shots}
    assert png_sizes(scripts_meta["shot_sizes"]) == [(plots.WIDTH, plots.bar_chart_height(len(sizes)))]
    assert (
        png_sizes(scripts_meta["highlight_curves"]) and "| shot size | shots | share |" in scripts_meta["shot_sizes"]
    )
    # a row per stage of the report, and one per other stage with losses or flags in this drama
    others = {json.loads(r)["stage"] for r in local_rows["losses"] + local_rows["flags"]} - set(STAGES)
    assert png_sizes(pairs_meta["loss_per_stage"]) == [(plots.WIDTH, plots.chart_height(len(STAGES) + len(others)))]
    assert "| keyframes (invalid) |" in pairs_meta["loss_per_stage"]
    report_meta = local_outcomes["loss_rate_report"].metadata
    assert len(png_sizes(report_meta["loss_rates_chart"])) == len(png_sizes(report_meta["loss_rate_by_drama"])) == 1
    assert report_meta["loss_rate_over_time"].startswith("One point in time")  # one drama

    # the same catalog, row by row; the same artifacts, file by file; the same checks, metadata, exports
    differences = []
    remote_rows = catalog_rows(postgres_url, remote_roots)
    engine = create_engine(postgres_url)
    with engine.connect() as conn:  # the episodes were read straight from the bucket
        assert set(conn.execute(text("select uri from episodes")).scalars()) == {
            f"{S3_LANDING}/{DRAMA}/ep01.mp4",
            f"{S3_LANDING}/{DRAMA}/ep02.mp4",
        }
    engine.dispose()
    for table, rows in local_rows.items():
        only_local = sorted(set(rows) - set(remote_rows[table]))
        only_remote = sorted(set(remote_rows[table]) - set(rows))
        if only_local or only_remote or len(rows) != len(remote_rows[table]):
            differences.append(f"catalog {table}: local only {only_local[:3]}, S3 only {only_remote[:3]}")
    local_files, remote_files = artifact_files(local_artifacts), artifact_files(S3_ARTIFACTS)
    assert any(name.endswith(".jpg") for name in local_files) and any(
        name.endswith(".parquet") for name in local_files
    )
    differences += [
        f"artifact {name}: only {'local' if name in local_files else 'on S3'}"
        for name in sorted(set(local_files) ^ set(remote_files))
    ]
    differences += [
        f"artifact {name}: different bytes"
        for name in sorted(set(local_files) & set(remote_files))
        if not same_file(name, local_files[name], remote_files[name], local_roots, remote_roots)
    ]
    assert sorted(remote_outcomes) == sorted(local_outcomes)
    for asset, outcome in local_outcomes.items():
        if sorted(remote_outcomes[asset].failed_checks) != sorted(outcome.failed_checks):
            differences.append(f"checks of {asset}: {outcome.failed_checks} != {remote_outcomes[asset].failed_checks}")
        mine, theirs = (
            comparable_metadata(outcome, local_roots),
            comparable_metadata(remote_outcomes[asset], remote_roots),
        )
        differences += [
            f"metadata {asset}.{key}: {str(mine.get(key))[:300]!r} != {str(theirs.get(key))[:300]!r}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        ]
    local_export = artifact_files(str(tmp_path / "export-local"))
    remote_export = artifact_files(str(tmp_path / "export-remote"))
    differences += [f"export {name}: only one side" for name in sorted(set(local_export) ^ set(remote_export))]
    differences += [
        f"export {name}: different"
        for name in sorted(set(local_export) & set(remote_export))
        if not same_file(name, local_export[name], remote_export[name], local_roots, remote_roots)
    ]
    assert not differences, "\n".join(differences)
    print(f"parity of the local and S3 + Postgres profiles in {time.perf_counter() - started:.0f} s")
