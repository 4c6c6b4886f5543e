"""The code location loads, and its asset specs match the reviewed snapshot.

A change to an asset's key, group, kinds, partitioning, dependencies or checks shows up
here as a diff; accept it with UPDATE_SNAPSHOTS=1 after reviewing it."""

import json
import os
from pathlib import Path

import dagster as dg

from skyscript_assets.definitions import DRAMA_ASSETS, defs

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_specs.json"


def _spec_snapshot() -> dict:
    repo = defs.get_repository_def()
    specs = {}
    for node in sorted(repo.asset_graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        specs[node.key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": getattr(node.partitions_def, "name", None),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "pool": node.pools and sorted(node.pools) or None,
        }
    return specs


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert repo.has_job("drama_pipeline")
    assert repo.has_sensor_def("new_dramas")
    assert repo.has_schedule_def("landing_zone_rescan")


def test_asset_specs_match_snapshot():
    current = _spec_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_drama_asset_is_partitioned_by_dramas_and_in_graph_order():
    keys = [a.key for a in DRAMA_ASSETS]
    repo = defs.get_repository_def()
    seen = set()
    for asset in DRAMA_ASSETS:
        assert asset.partitions_def is not None and asset.partitions_def.name == "dramas"
        node = repo.asset_graph.get(asset.key)
        assert {p for p in node.parent_keys if p in keys} <= seen, f"{asset.key} listed before its parents"
        seen.add(asset.key)


def _placement(env: dict) -> dict:
    """Pools and GPU demands of the Definitions built in a fresh process under `env`."""
    import subprocess
    import sys

    code = (
        "import json, skyscript_assets.definitions as d\n"
        "print(json.dumps({a.key.to_user_string(): [a.node_def.pool, a.node_def.tags.get('dagster-k8s/config')]"
        " for a in d.DRAMA_ASSETS}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SKYSCRIPT_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_step_holds_gpus_only_when_it_loads_its_model_in_process():
    local = _placement({})
    assert local["raw_mllm_json"][0] is None  # the offline baseline annotator runs on CPU
    assert local["detections"][0] == local["character_refinements"][0] == "gpu"  # models in the step's process
    cluster = _placement({"SKYSCRIPT_PROFILE": "k8s"})
    assert cluster["raw_mllm_json"][0] is None  # the lmdeploy server answers: no GPU reserved for the step
    in_process = _placement(
        {"SKYSCRIPT_PROFILE": "k8s", "SKYSCRIPT_MLLM_BACKEND": "lmdeploy", "SKYSCRIPT_MLLM_TP": "4"}
    )
    pool, k8s_config = in_process["raw_mllm_json"]
    limits = (
        json.loads(k8s_config)["container_config"]["resources"]["limits"]
        if isinstance(k8s_config, str)
        else k8s_config["container_config"]["resources"]["limits"]
    )
    assert pool == "gpu" and limits["nvidia.com/gpu"] == "4"
    assert cluster["restored_scripts"][0] is None and local["restored_scripts"][0] is None  # renderer or server
    restore_in_process = _placement(
        {"SKYSCRIPT_PROFILE": "k8s", "SKYSCRIPT_RESTORE_MODEL_PATH": "/models/qwen", "SKYSCRIPT_RESTORE_TP": "2"}
    )
    pool, k8s_config = restore_in_process["restored_scripts"]
    config = json.loads(k8s_config) if isinstance(k8s_config, str) else k8s_config
    assert pool == "gpu" and config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert restore_in_process["raw_mllm_json"][0] is None
