"""calibrated_shooting_scripts: scenes from the whole pipeline, and the human calibration gate."""

import json
from pathlib import Path

import dagster as dg
import skimage.data
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, CharacterRow, ShootingScriptRow
from skyscript_assets.definitions import DRAMA_ASSETS, REPORT_ASSETS
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.defs.scripts.assets import calibrated_shooting_scripts
from skyscript_assets.defs.video.assets import keyframes
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.schema import ShootingScript
from skyscript_assets.settings import database_url
from skyscript_assets.stages.scripts.calibration import simulated_review

# the release and report assets by key, wherever their domain folder defines them
_BY_KEY = {a.key.to_user_string(): a for a in [*DRAMA_ASSETS, *REPORT_ASSETS]}
restored_scripts, script_pairs, loss_rate_report = (
    _BY_KEY[k] for k in ("restored_scripts", "script_pairs", "loss_rate_report")
)


def _materialize(instance, assets):
    return dg.materialize(
        assets,
        partition_key="script-drama",
        instance=instance,
        resources=local_resources(),
        run_config={"ops": {"keyframes": {"config": {"workers": 1}}}} if keyframes in assets else None,
        raise_on_error=False,
    )


def test_shooting_scripts_are_assembled_and_gated_by_review(skyscript_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # datasets reads local shards; no hub lookups
    folder = skyscript_home / "landing" / "script-drama"
    render_video(
        folder / "ep1.mp4",
        [
            ShotSpec(skimage.data.astronaut(), 1.5, "zoom", subtitle="I'm Eileen."),
            ShotSpec(skimage.data.astronaut(), 1.5, "pan", "cut"),
            ShotSpec(skimage.data.rocket(), 1.5, "static", "cut"),
        ],
        size=(360, 640),
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["script-drama"])
        result = _materialize(instance, DRAMA_ASSETS)
        assert result.success
        [gate] = [e for e in result.get_asset_check_evaluations() if e.check_name == "calibration_gate"]
        assert not gate.passed and "awaiting review" in gate.description
        pairs_meta = next(
            e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "script_pairs"
        ).materialization.metadata
        assert pairs_meta["pairs"].value == 0  # nothing is released before calibration passes

        with Catalog(database_url()).session() as session:
            rows = list(session.scalars(select(ShootingScriptRow).order_by(ShootingScriptRow.scene_number)))
        scripts = [ShootingScript.model_validate(r.script) for r in rows]
        assert sum(len(s.shots) for s in scripts) == 3
        assert all(r.text.startswith(f"SCENE {r.scene_number} ") and r.calibration_status == "pending" for r in rows)
        with Catalog(database_url()).session() as session:
            library = list(session.scalars(select(CharacterRow)))
        # the astronaut's face: the first character of the library (HOG: no DeepFace weights here)
        assert [(c.character_id, c.first_episode_id, c.embedding_kind) for c in library][:1] == [
            ("char-1", "ep1", "hog")
        ]
        assert library[0].observations >= 1 and library[0].first_time_s < 3.0
        assert all(Path(c.face_uri).read_bytes().startswith(b"\xff\xd8") for c in library)
        shots = [shot for s in scripts for shot in s.shots]
        assert [shot.camera_movement for shot in shots] == ["zoom", "pan", "static"]
        assert all(0.0 <= shot.highlight_score <= 1.0 for shot in shots)

        # Reviewers import the packet's Label Studio tasks, accept the pre-annotations and export.
        calibration = skyscript_home / "artifacts" / "script-drama" / "calibrated_shooting_scripts" / "calibration"
        packets = json.loads((calibration / "packets.json").read_text())["packets"]
        tasks = json.loads((calibration / f"{packets[0]['packet_id']}.tasks.json").read_text())
        assert [t["data"]["record_id"] for t in tasks] == packets[0]["record_ids"]
        assert all(t["data"]["image"].startswith("/data/local-files/?d=script-drama/keyframes/") for t in tasks)
        assert (calibration / "label_config.xml").read_text().startswith("<View>")
        # One of them corrects the camera movement of a shot: still above 90 %, and applied.
        (folder / "calibration").mkdir()
        exported = simulated_review(tasks, corrections=0)
        [movement] = [r for r in exported[0]["annotations"][0]["result"] if r["from_name"] == "camera_movement"]
        original = movement["value"]["choices"][0]
        movement["value"]["choices"] = [corrected := "tilt" if original != "tilt" else "pan"]
        (folder / "calibration" / "export-1.json").write_text(json.dumps(exported))
        again = _materialize(instance, [calibrated_shooting_scripts])
        [gate] = [e for e in again.get_asset_check_evaluations() if e.check_name == "calibration_gate"]
        assert gate.passed
        with Catalog(database_url()).session() as session:
            assert set(session.scalars(select(ShootingScriptRow.calibration_status))) == {"passed"}
            rows = list(session.scalars(select(ShootingScriptRow).order_by(ShootingScriptRow.scene_number)))
        record_id = exported[0]["data"]["record_id"]  # <drama>/<episode>/scene-NNNN/shot-NNN
        scene_number, shot_number = (int(part.split("-")[1]) for part in record_id.split("/")[-2:])
        [row] = [r for r in rows if r.scene_number == scene_number]
        [shot] = [s for s in row.script["shots"] if s["shot_number"] == shot_number]
        assert shot["camera_movement"] == corrected and shot["sources"]["camera_movement"] == "reviewer"
        [audit] = shot["corrections"]
        assert (audit["target"], audit["original"], audit["corrected"]) == ("camera_movement", original, corrected)
        assert audit["review_file"] == "export-1.json" and "CAMERA POSITION: " in row.text
        assert corrected.title() in row.text
        assert json.loads((calibration / "corrections.json").read_text())[0]["record_id"] == record_id

        # Calibrated: the release holds one pair per restoration, loadable as users load it.
        released = dg.materialize(
            [restored_scripts, script_pairs, loss_rate_report],
            instance=instance,
            resources=local_resources(),
            selection=[restored_scripts.key, script_pairs.key],
            partition_key="script-drama",
        )
        assert released.success
        from datasets import load_dataset

        data = skyscript_home / "artifacts" / "script-drama" / "script_pairs" / "data"
        dataset = load_dataset(
            "parquet", data_files=str(data / "*.parquet"), split="train", cache_dir=str(skyscript_home / "hf")
        )
        assert dataset.num_rows == len(rows) and set(dataset["calibration_status"]) == {"passed"}
        # the released pair carries the correction with its provenance, never the value it replaced
        [pair] = [p for p in dataset if p["scene_number"] == scene_number]
        released = json.loads(pair["shooting_script_json"])
        [released_shot] = [s for s in released["shots"] if s["shot_number"] == shot_number]
        assert (
            released_shot["camera_movement"] == corrected and released_shot["sources"]["camera_movement"] == "reviewer"
        )
        assert "corrections" not in released_shot and corrected.title() in pair["shooting_script_text"]
        assert all(text.startswith(("INT.", "EXT.", "INT./EXT.")) for text in dataset["script"])
        card = (data.parent / "README.md").read_text()
        assert f"| pairs | {len(rows)} |" in card
        report = dg.materialize([loss_rate_report], instance=instance, resources=local_resources())
        markdown = (skyscript_home / "artifacts" / "_reports" / "loss_rate_report.md").read_text()
        assert report.success and "| script-drama | keyframes (invalid) |" in markdown

        # Two corrected fields of a packet of three shots: below 90 %, back for repair, and the
        # blocking gate keeps the drama out of the release.
        (folder / "calibration" / "export-1.json").write_text(json.dumps(simulated_review(tasks, corrections=2)))
        repaired = _materialize(instance, [calibrated_shooting_scripts, restored_scripts, script_pairs])
        [gate] = [e for e in repaired.get_asset_check_evaluations() if e.check_name == "calibration_gate"]
        assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR and "ep1" in gate.description
        assert not repaired.success
        assert {e.asset_key.to_user_string() for e in repaired.get_asset_materialization_events()} == {
            "calibrated_shooting_scripts"
        }
        packets = json.loads((calibration / "packets.json").read_text())
        assert packets["episodes_to_repair"] == ["ep1"] and packets["packets"][0]["status"] == "needs_repair"
