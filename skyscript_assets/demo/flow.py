"""`skyscript demo`: render the demo drama, materialize every asset on it as the Dagster UI
would (each asset its own run on the local instance), walk the calibration loop with a
simulated reviewer, then show the release, the exports and the shot accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from skyscript_assets import settings
from skyscript_assets.catalog import queries
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource
from skyscript_assets.defs.platform.runner import AssetOutcome, materialize_drama, register_drama, summary_lines
from skyscript_assets.defs.release.dataset import dataset_lines
from skyscript_assets.demo.demo_drama import DEMO_DRAMA_ID, write_demo_drama
from skyscript_assets.stages.release.export import EXPORT_FORMATS, export_release
from skyscript_assets.stages.scripts.assemble import REVIEWS_FOLDER
from skyscript_assets.stages.scripts.calibration import simulated_review

# What the reviewer's export makes run again: the shooting scripts are graded anew, the release follows.
REVIEWED_ASSETS = ("calibrated_shooting_scripts", "restored_scripts", "script_pairs")


def local_instance() -> dg.DagsterInstance:
    settings.ensure_dagster_home()
    return dg.DagsterInstance.get()


def run_demo(drama_id: str | None = None) -> int:
    """The whole demo; 0 when every asset and check of the drama passed."""
    from skyscript_assets.definitions import DRAMA_ASSETS, REPORT_ASSETS

    drama_id = drama_id or DEMO_DRAMA_ID
    home, landing = settings.skyscript_home(), Path(settings.landing_url())
    print(f"SKYSCRIPT_HOME={home}")
    print(f"rendering the demo drama {drama_id!r} into {landing / drama_id} ...")
    write_demo_drama(landing, home / "demo_groundtruth", drama_id=drama_id)
    instance = local_instance()
    register_drama(instance, drama_id)
    outcomes = materialize_drama(drama_id, DRAMA_ASSETS, instance=instance)
    if all(o.ok for o in outcomes):
        outcomes = review_and_regrade(drama_id, instance, outcomes, DRAMA_ASSETS)
    if all(o.ok for o in outcomes):
        outcomes += materialize_drama(None, REPORT_ASSETS, instance=instance)
    print("\n".join(summary_lines(drama_id, outcomes, queries.losses(CatalogResource().get(), drama_id))))
    release = settings.artifacts_url() + f"/{drama_id}/script_pairs"
    print(f"\nRelease: {release}/README.md and {release}/data/*.parquet")
    load = f"datasets.load_dataset('parquet', data_files='{release}/data/*.parquet')"
    print(f'  python -c "import datasets; print({load})"')
    print("\n".join(dataset_lines(outcomes)))  # every calibrated drama in one dataset (skyscript_dataset)
    if all(o.ok for o in outcomes):
        export_every_format(drama_id)
    print("\nOpen the Dagster UI on these runs:")
    print(
        f"  DAGSTER_HOME={settings.dagster_home()} dagster dev -m skyscript_assets.definitions    (or: skyscript ui)"
    )
    truth_path = home / "demo_groundtruth" / f"{drama_id}.json"
    print(shot_accuracy(drama_id, truth_path))
    print(f"Ground truth of the demo drama: {truth_path}")
    return 0 if all(o.ok for o in outcomes) else 1


def review_and_regrade(
    drama_id: str, instance: dg.DagsterInstance, outcomes: list[AssetOutcome], assets: list[dg.AssetsDefinition]
) -> list[AssetOutcome]:
    """The calibration loop, end to end: a simulated reviewer corrects one field of the demo's
    Label Studio tasks and exports them into the drama's landing folder; the shooting scripts
    are graded again, pass the 90 % gate, and the release follows. Returns the outcomes with
    those of the second pass in place of the first."""
    calibration = Path(settings.artifacts_url()) / drama_id / "calibrated_shooting_scripts" / "calibration"
    tasks = [task for path in sorted(calibration.glob("*.tasks.json")) for task in json.loads(path.read_text())]
    export = Path(settings.landing_url()) / drama_id / REVIEWS_FOLDER / "demo-reviewer.json"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_text(json.dumps(simulated_review(tasks, corrections=1), indent=1))
    print(
        f"\nCalibration: {len(tasks)} Label Studio tasks in {calibration}; a simulated reviewer corrected one field "
        f"and exported them to {export}. Grading again:"
    )
    again = materialize_drama(
        drama_id, [a for a in assets if a.key.to_user_string() in REVIEWED_ASSETS], instance=instance
    )
    replaced = {o.asset for o in again}
    return [o for o in outcomes if o.asset not in replaced] + again


def export_every_format(drama_id: str) -> None:
    """The demo's release written out in every export format, and one of its pairs."""
    catalog, artifacts = CatalogResource().get(), ArtifactsResource().get()
    folder = settings.skyscript_home() / "exports" / drama_id
    print(f"\nExports (skyscript export {drama_id} --format FORMAT --out DIR):")
    for fmt in EXPORT_FORMATS:
        done = export_release(catalog, artifacts, drama_id, fmt, folder / fmt, overwrite=True)
        print(f"  {fmt:<8} {done.count} {done.what} in {folder / fmt}")
    with (folder / "jsonl" / "pairs.jsonl").open(encoding="utf-8") as f:
        pair = max((json.loads(line) for line in f), key=lambda p: len(p["script"]))  # the fullest scene
    print(
        f"\nOne pair: {pair['pair_id']} (style {pair['style']}, model {pair['model_id']}, "
        f"calibration {pair['calibration_status']}, highlight {pair['highlight_score']:.2f})"
    )
    print("  script:")
    for line in pair["script"].strip().splitlines()[:12]:
        print(f"    {line}")
    print("  shooting script:")
    for line in pair["shooting_script_text"].strip().splitlines()[:8]:
        print(f"    {line}")
    print(reviewed_in_release(drama_id, folder / "jsonl" / "pairs.jsonl"))


def reviewed_in_release(drama_id: str, pairs_jsonl: Path) -> str:
    """The reviewer's correction as the released pair carries it (source `reviewer`), and the
    value it replaced, which only the audit trail beside the shooting scripts keeps."""
    from skyscript_assets.stages.scripts.calibration import reviewed_values

    with pairs_jsonl.open(encoding="utf-8") as f:
        found = [
            (p["pair_id"], *v)
            for p in map(json.loads, f)
            for v in reviewed_values(json.loads(p["shooting_script_json"]))
        ]
    if not found:
        return "\nNo reviewer's correction in the released pairs."
    audit = (
        Path(settings.artifacts_url()) / drama_id / "calibrated_shooting_scripts" / "calibration" / "corrections.json"
    )
    lines = [
        f"\nReviewer's correction in the released pair {pair_id}, shot {shot}: {name} = {value!r} (source: reviewer)"
        for pair_id, shot, name, value in found[:3]
    ]
    for c in json.loads(audit.read_text())[:3] if audit.is_file() else []:
        lines.append(f"  replaced (audit only, not released: {audit}): {c['target']} was {c['original']!r}")
    return "\n".join(lines)


def shot_accuracy(drama_id: str, truth_path: Path) -> str:
    """Shot boundaries found in the catalog against the demo's frame-exact ground truth."""
    from skyscript_assets.stages.ingest.manifest import episode_id_for

    truth = json.loads(truth_path.read_text())
    found = [(s.episode_id, s.start_frame, s.transition_in) for s in queries.shots(CatalogResource().get(), drama_id)]
    if not found:
        return "Shot accuracy: no shots in the catalog yet"
    expected = {
        (episode_id_for(name), shot["start_frame"] if shot["transition_in"] == "cut" else None, shot["transition_in"])
        for name, t in truth.items()
        for shot in t["shots"]
        if shot["transition_in"] != "start"
    }
    got = {(e, f, kind) for e, f, kind in found if kind != "start"}
    exact = sum(
        1
        for e, f, kind in expected
        if any(g[0] == e and g[2] == kind and (f is None or abs(g[1] - f) <= 1) for g in got)
    )
    return (
        f"Shot accuracy on the demo drama: {exact}/{len(expected)} boundaries found (cuts to 1 frame, fades and "
        f"dissolves by kind), {len(got)} detected"
    )
