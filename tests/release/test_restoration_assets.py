"""restored_scripts and script_pairs with a restoration LLM: an OpenAI-compatible server on
127.0.0.1 answering n samples per request, the relationships exported with the release, and
the offline fallback. Shooting scripts are written into the catalog directly."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest
from fake_chat_server import FakeChatServer
from sqlalchemy import select

from skyscript_assets.catalog import Catalog, Drama, Loss, ShootingScriptRow
from skyscript_assets.defs.platform.resources import RestorationLlmResource, local_resources
from skyscript_assets.defs.release.assets import restored_scripts, script_pairs
from skyscript_assets.defs.reports.loss_rate_report import loss_rate_report
from skyscript_assets.schema import CharacterInShot, ContinuousEmotion, ShootingScript, ShotScript
from skyscript_assets.settings import database_url
from skyscript_assets.stages.scripts.table1 import shooting_script_text

DRAMA = "llm-drama"


def sample_scripts(scenario: str) -> list[ShootingScript]:
    def emma(**k):
        return CharacterInShot(
            character_id="char-1",
            name="Emma",
            temperament="warm and gentle",
            facial_attractiveness=4,
            vad=ContinuousEmotion(valence=7, arousal=4, dominance=5),
            location_cm=(0, 165, 300),
            **k,
        )

    def leo(**k):
        return CharacterInShot(
            character_id="char-2",
            name="Leo",
            temperament="cold, stern",
            facial_attractiveness=3,
            vad=ContinuousEmotion(valence=3, arousal=6, dominance=6),
            location_cm=(80, 170, 320),
            **k,
        )

    return [
        ShootingScript(
            drama_id=DRAMA,
            episode_id="ep01",
            scene_number=number,
            interior=True,
            location=place,
            time_of_day="day",
            description=f"{place} at noon. scenario={scenario}",
            shots=[
                ShotScript(
                    shot_number=1,
                    start_s=0,
                    end_s=2,
                    shot_size="medium",
                    characters=[emma(line="You came back."), leo()],
                ),
                ShotScript(
                    shot_number=2, start_s=2, end_s=4, shot_size="close_up", characters=[leo(line="Only for the cup.")]
                ),
            ],
        )
        for number, place in ((1, "Coffee shop"), (2, "Station"))
    ]


def seed_catalog(scripts: list[ShootingScript]) -> None:
    catalog = Catalog(database_url())
    prov = {
        "run_id": "seed",
        "asset_key": "calibrated_shooting_scripts",
        "partition": DRAMA,
        "stage_version": "1",
        "model_id": "",
    }
    catalog.replace_partition_rows(
        asset_key="calibrated_shooting_scripts",
        partition=DRAMA,
        tables=[ShootingScriptRow],
        rows=[
            ShootingScriptRow(
                drama_id=DRAMA,
                episode_id=s.episode_id,
                scene_number=s.scene_number,
                shots=len(s.shots),
                script=s.model_dump(mode="json"),
                text=shooting_script_text(s),
                calibration_status="pending",
                **prov,
            )
            for s in scripts
        ],
    )
    catalog.replace_partition_rows(
        asset_key="drama_manifest",
        partition=DRAMA,
        tables=[Drama],
        rows=[
            Drama(
                drama_id=DRAMA,
                title="LLM drama",
                language="fr",
                landing_uri="/nowhere",
                **{**prov, "asset_key": "drama_manifest"},
            )
        ],
    )


def materialize_release(
    instance,
    llm: RestorationLlmResource,
    restore_config: dict,
    assets=(restored_scripts, script_pairs),
    checks: dict | None = None,
):
    """Metadata per asset; `checks`, when given, receives each check's evaluation by name."""
    configs = {
        "restored_scripts": {"config": restore_config},
        "script_pairs": {"config": {"include_uncalibrated": True}},
    }
    names = {a.key.to_user_string() for a in assets}
    result = dg.materialize(
        list(assets),
        partition_key=DRAMA,
        instance=instance,
        resources={**local_resources(), "restoration_llm": llm},
        run_config={"ops": {name: c for name, c in configs.items() if name in names}},
    )
    assert result.success
    if checks is not None:
        checks.update({e.check_name: e for e in result.get_asset_check_evaluations()})
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def _restoration_rows(home) -> list[dict]:
    return [
        row
        for path in sorted((home / "artifacts" / DRAMA / "restored_scripts").glob("*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


def test_one_request_per_shooting_script_with_n_samples_then_a_release_with_relationships(
    skyscript_home, server, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seed_catalog(sample_scripts("restore"))
    llm = RestorationLlmResource(backend="openai", base_url=server.base_url, model="restorer")
    config = {"restorations_per_script": 6, "samples_per_request": 6, "seed": 5}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", [DRAMA])
        meta = materialize_release(instance, llm, config, assets=[restored_scripts])["restored_scripts"]
        restore_bodies = list(server.bodies)
        assert len(restore_bodies) == 2 and all(
            b["n"] == 6 for b in restore_bodies
        )  # one per shooting script, never 6
        assert (
            meta["requests_planned"] == 2
            and meta["restorations_per_script"] == 6
            and meta["model_id"] == "openai:restorer"
        )
        # six samples each, the fake's fourth a copy of its third: five kept, one near-duplicate lost per script
        assert meta["restorations"] == 10 and meta["lost"] == 2 and meta["language"] == "fr"
        rows = _restoration_rows(skyscript_home)
        seeds = {b["seed"] for b in restore_bodies}
        assert {r["seed"] for r in rows} == seeds and len(seeds) == 2
        assert all(
            r["model_id"] == "openai:restorer" and r["style"].startswith("genre=") and "language=fr" in r["style"]
            for r in rows
        )
        assert sorted(r["restoration_index"] for r in rows if r["script_id"].endswith("scene-0001")) == [0, 1, 2, 4, 5]
        styles = {r["script_id"]: r["style"] for r in rows}
        assert all(
            f"Style of this version: {_described(styles[s])}" in b["messages"][0]["content"]
            for s, b in zip(
                sorted(styles), sorted(restore_bodies, key=lambda b: "Station" in b["messages"][0]["content"])
            )
        )

        # The same config asks the same requests again.
        server.bodies.clear()
        materialize_release(instance, llm, config, assets=[restored_scripts])
        assert _canonical(server.bodies) == _canonical(restore_bodies)
        assert _restoration_rows(skyscript_home) == rows

        server.bodies.clear()
        pairs_meta = materialize_release(instance, llm, config, assets=[script_pairs])["script_pairs"]
        assert (
            pairs_meta["pairs"] == 10 and pairs_meta["relationship_edges"] == 2 and pairs_meta["character_pairs"] == 1
        )
        assert (
            all("Relationship label:" in b["messages"][0]["content"] for b in server.bodies)
            and len(server.bodies) == 2
        )

    release = skyscript_home / "artifacts" / DRAMA / "script_pairs"
    edges = pq.read_table(release / "relationships" / "relationship_edges.parquet").to_pylist()
    assert [(e["episode_id"], e["scene_number"], e["name_a"], e["name_b"], e["label"]) for e in edges] == [
        ("ep01", 1, "Emma", "Leo", "wary allies"),
        ("ep01", 2, "Emma", "Leo", "wary allies"),
    ]
    assert (
        edges[0]["shots_together"] == 1
        and edges[0]["replies_b_to_a"] == 1
        and edges[0]["mean_distance_cm"] == pytest.approx(82.6, abs=0.1)
    )  # |(80, 5, 20)| cm
    [pair] = pq.read_table(release / "relationships" / "character_pairs.parquet").to_pylist()
    assert (pair["temperament_a"], pair["facial_attractiveness_b"], pair["scenes_together"]) == (
        "warm and gentle",
        3.0,
        2,
    )
    assert pair["compatibility"] == pytest.approx(0.4 * 0.5 + 0.3 * 5 / 8 + 0.3 * 0.75, abs=1e-3)
    card = (release / "README.md").read_text()
    assert "config_name: relationship_edges" in card and "| `relationships/character_pairs.parquet` | 1 |" in card

    from datasets import load_dataset

    dataset = load_dataset(
        "parquet", data_files=str(release / "data" / "*.parquet"), split="train", cache_dir=str(skyscript_home / "hf")
    )
    assert dataset.num_rows == 10 and set(dataset["seed"]) == seeds and set(dataset["model_id"]) == {"openai:restorer"}


def _described(label: str) -> str:
    fields = dict(part.split("=") for part in label.split())
    return f"{fields['tone']} {fields['genre']}, {fields['length']}"


def _canonical(bodies: list[dict]) -> list[str]:
    return sorted(json.dumps(b, sort_keys=True) for b in bodies)


def test_samples_per_request_splits_n_into_requests_of_different_styles(skyscript_home, server):
    seed_catalog(sample_scripts("restore")[:1])
    llm = RestorationLlmResource(backend="openai", base_url=server.base_url, model="restorer")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", [DRAMA])
        meta = materialize_release(
            instance, llm, {"restorations_per_script": 6, "samples_per_request": 3}, assets=[restored_scripts]
        )["restored_scripts"]
    assert [b["n"] for b in server.bodies] == [3, 3] and meta["requests_planned"] == 2
    prompts = [b["messages"][0]["content"] for b in server.bodies]
    assert (
        prompts[0].split("Style of this version:")[0] == prompts[1].split("Style of this version:")[0]
    )  # shared prefix
    assert len({p.split("Style of this version:")[1] for p in prompts}) == 2
    assert len({r["style"] for r in _restoration_rows(skyscript_home)}) == 2


def test_a_server_that_keeps_failing_costs_losses_not_the_run(skyscript_home, server):
    seed_catalog(sample_scripts("always_500")[:1])
    llm = RestorationLlmResource(backend="openai", base_url=server.base_url, model="restorer", max_retries=1)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", [DRAMA])
        checks: dict = {}
        metas = materialize_release(
            instance,
            llm,
            {"restorations_per_script": 4, "samples_per_request": 4},
            assets=[restored_scripts, script_pairs, loss_rate_report],
            checks=checks,
        )
    assert metas["restored_scripts"]["restorations"] == 0 and metas["restored_scripts"]["lost"] == 4
    assert metas["script_pairs"]["pairs"] == 0
    with Catalog(database_url()).session() as session:
        losses = list(session.scalars(select(Loss).where(Loss.partition == DRAMA)))
    assert (
        sorted((loss.stage, loss.reason) for loss in losses)
        == [("relationships", "llm_failed")] + [("restored_scripts", "llm_failed")] * 4
    )
    assert all("\n" not in loss.detail and "gave up after 2 attempts" in loss.detail for loss in losses)
    report = (skyscript_home / "artifacts" / "_reports" / "loss_rate_report.md").read_text()
    assert f"| {DRAMA} | restored_scripts | 4 | 4 | 100.00% |" in report
    assert f"| {DRAMA} | relationships | 1 | 1 | 100.00% |" in report
    # the report's checks: both stages over their thresholds fail (red), with the drama named
    for stage in ("restored_scripts", "relationships"):
        failed = checks[f"loss_rate_{stage}"]
        assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR and DRAMA in failed.description
    # nothing upstream ran for this drama: "not run", never a 0 % that passes for a measurement
    assert f"| {DRAMA} | raw_mllm_json | - | 0 | not run: not materialized for this drama |" in report
    assert checks["loss_rate_raw_mllm_json"].passed and "not run" in checks["loss_rate_raw_mllm_json"].description


def test_offline_one_faithful_restoration_per_script_and_unlabelled_relationships(skyscript_home, tmp_path):
    seed_catalog(sample_scripts("offline"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", [DRAMA])
        offline = materialize_release(instance, RestorationLlmResource(), {})
        missing = materialize_release(
            instance,
            RestorationLlmResource(backend="transformers", model_path=str(tmp_path / "absent")),
            {},
            assets=[restored_scripts],
        )
    meta = offline["restored_scripts"]
    assert (
        meta["restorations"] == 2 and meta["restorations_per_script"] == 1 and meta["llm"].startswith("not configured")
    )
    assert offline["script_pairs"]["relationship_labels"].startswith("not configured")
    edges = pq.read_table(
        skyscript_home / "artifacts" / DRAMA / "script_pairs" / "relationships" / "relationship_edges.parquet"
    )
    assert edges.num_rows == 2 and edges.column("label").to_pylist() == [None, None]
    assert missing["restored_scripts"]["llm"].startswith("not run: no weights at")
    rows = _restoration_rows(skyscript_home)
    assert [(r["style"], r["seed"], r["model_id"]) for r in rows] == [("faithful", None, "fountain-renderer/1")] * 2


def test_the_default_config_asks_100_restorations_in_one_request(skyscript_home, server):
    seed_catalog(sample_scripts("restore")[:1])
    llm = RestorationLlmResource(backend="openai", base_url=server.base_url, model="restorer")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", [DRAMA])
        meta = materialize_release(instance, llm, {}, assets=[restored_scripts])["restored_scripts"]
    assert [b["n"] for b in server.bodies] == [100]  # one request with n = N, never N requests
    assert (
        meta["restorations_per_script"] == 100 and meta["requests_planned"] == 1 and meta["samples_per_request"] == 100
    )
    # the fake repeats every fourth sample: 25 near-duplicates go, 75 distinct restorations stay
    assert meta["restorations"] == 75 and meta["lost"] == 25
    rows = _restoration_rows(skyscript_home)
    assert len({r["style"] for r in rows}) == 1 and len({r["seed"] for r in rows}) == 1
    assert sorted({r["restoration_index"] % 4 for r in rows}) == [0, 1, 2]  # every fourth was a copy
