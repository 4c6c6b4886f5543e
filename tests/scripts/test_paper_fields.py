"""Every field of the paper's real sample reaches the released pair and the Table 1 text.

The paper's sample (../shared/reference/skyscript_sample_en.json) is cleaned as any MLLM
output is, each case becomes a keyframe of its own shot, and the shots go through the
refinement (no DeepFace weights: the MLLM's values stand), the assembly, the offline
restoration and the release. The mapping table of docs/scripts.md (paper field -> released
field -> Table 1 label) is the contract: a key of the sample without a row, or a row whose
field is empty in the released records or whose label is missing from their Table 1 text,
fails the test.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict
from pathlib import Path

import fsspec
import numpy as np
import pytest

from skyscript_assets.stages.annotation.normalise import normalise_frame
from skyscript_assets.stages.refinement.characters import RefinementModels, refine_frames
from skyscript_assets.stages.release import pairs, restore
from skyscript_assets.stages.release.loss_report import DramaCounts
from skyscript_assets.stages.release.shards import iter_shard_rows
from skyscript_assets.stages.scripts.shooting_scripts import KeyframeEvidence, ShotEvidence, assemble_episode
from skyscript_assets.stages.scripts.table1 import shooting_script_text

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "scripts.md"


def paper_sample() -> dict:
    path = REFERENCE / "skyscript_sample_en.json"
    if not path.is_file():  # like every test on ../shared: a checkout without it skips (only Postgres never does)
        pytest.skip(f"../shared/reference/skyscript_sample_en.json is absent ({path})")
    return json.loads(path.read_text(encoding="utf-8"))


def paper_keys(sample: dict) -> set[str]:
    """Every key of the sample as a path: `BGM[2]`, `people[].Line`, `people[].Continuous Emotion.Arousal (A)`."""
    keys = set()
    for case in sample.values():
        for key, value in case.items():
            if isinstance(value, list) and key not in ("people", "objects"):
                keys |= {f"{key}[{i}]" for i in range(len(value))}
            else:
                keys.add(key)
        for kind in ("people", "objects"):
            for entry in case.get(kind) or []:
                for key, value in entry.items():
                    keys.add(f"{kind}[].{key}")
                    if isinstance(value, dict):
                        keys |= {f"{kind}[].{key}.{sub}" for sub in value}
    return keys


def field_mapping() -> list[tuple[str, list[str], str]]:
    """(paper field, released fields, Table 1 label) per row of the docs' mapping table."""
    block = (
        DOCS.read_text(encoding="utf-8").split("<!-- paper-fields:start -->")[1].split("<!-- paper-fields:end -->")[0]
    )
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(
            (
                re.match(r"`([^`]+)`", cells[0]).group(1),
                re.findall(r"`([^`]+)`", cells[1]),
                re.match(r"`([^`]+)`", cells[2]).group(1),
            )
        )
    return rows


def values_at(record, path: str) -> list:
    """The non-empty values at `path` (`shots[].characters[].vad.valence`) in a JSON record."""
    nodes = [record]
    for part in path.split("."):
        name = part.removesuffix("[]")
        nodes = [n.get(name) for n in nodes if isinstance(n, dict)]
        if part.endswith("[]"):
            nodes = [item for n in nodes for item in (n or [])]
    return [n for n in nodes if n not in (None, "", [], {})]


class _NoFaces:
    def detect(self, images):
        return [[] for _ in images]


def released_records(sample: dict) -> tuple[list[dict], list[str]]:
    """The sample through refinement, assembly, restoration and release: the released
    shooting scripts (parsed) and their Table 1 texts."""
    rgb = np.full((360, 640, 3), 96, np.uint8)
    frames = [normalise_frame(case).model_dump(mode="json") for case in sample.values()]
    models = RefinementModels(_NoFaces(), not_run={"attributes": "not run: no weights"})
    refined, _, _ = refine_frames(models, [(f"ep01/kf{i:04d}", rgb, f["people"]) for i, f in enumerate(frames)])
    shots = []
    for i, (frame, refinement) in enumerate(zip(frames, refined)):
        people = [
            {**asdict(c), "line": frame["people"][c.person_index].get("line"), "line_source": "subtitle"}
            for c in refinement.characters
        ]
        keyframe = KeyframeEvidence(refinement.item, rgb, frame, json.loads(json.dumps(people, default=str)))
        shots.append(ShotEvidence(i, 2.0 * i, 2.0 * i + 2.0, [keyframe]))
    scripts = assemble_episode("paper", "ep01", shots, {})
    fs, root = fsspec.filesystem("memory"), f"/paper-{uuid.uuid4().hex[:8]}"
    restored = restore.restore_drama(
        scripts, None, restore.RestorationPlan(restorations=1), fs, f"{root}/restored", rows_per_shard=1000
    )
    calibrated = [
        pairs.CalibratedScript(s, s.model_dump(mode="json"), shooting_script_text(s), "passed") for s in scripts
    ]
    counts = DramaCounts("paper", {}, {}, 1, len(frames), 0, len(scripts), restored.kept, 0)
    release = pairs.release_drama(
        "paper",
        calibrated,
        [s.path for s in restored.shards],
        {},
        fs,
        f"{root}/release",
        include_uncalibrated=False,
        rows_per_shard=1000,
        labeller=None,
        loss_counts=counts,
    )
    rows = list(iter_shard_rows(fs, release.pair_shards))
    assert len(rows) == len(scripts) > 0
    return [json.loads(r["shooting_script_json"]) for r in rows], [r["shooting_script_text"] for r in rows]


def test_every_key_of_the_papers_sample_reaches_the_release_and_table1():
    sample = paper_sample()
    mapping = field_mapping()
    missing = paper_keys(sample) - {paper for paper, _, _ in mapping}
    assert not missing, f"paper fields without a row in docs/scripts.md: {sorted(missing)}"

    records, texts = released_records(sample)
    text = "\n".join(texts)
    for paper, ours, label in mapping:
        assert ours, paper
        for path in ours:
            assert any(values_at(r, path) for r in records), f"{paper} -> {path}: empty in every released record"
        assert label in text, f"{paper}: {label!r} not in the Table 1 text"


def test_the_released_values_are_the_samples():
    sample = paper_sample()
    records, texts = released_records(sample)
    shots = [shot for r in records for shot in r["shots"]]
    first, third = sample["Case_1"], sample["Case_3"]
    [shot] = [s for s in shots if s["characters"] and s["characters"][0]["looks"] == first["people"][0]["Looks"]]
    person, music = shot["characters"][0], shot["music"]
    assert (person["age"], person["gender"], person["emotion"], person["shot_type"]) == (
        "adult",
        "male",
        "happy",
        "medium",
    )
    assert person["vad"] == {"valence": 8.0, "arousal": 6.0, "dominance": 7.0} and person["type"] == "person"
    assert person["sources"] == {"age": "mllm", "gender": "mllm", "emotion": "mllm"} and person["conflicts"] == []
    assert person["line"] == first["people"][0]["Line"] and person["line_source"] == "subtitle"
    # no audio track here: the MLLM's BGM stands alone, genre and mood included
    assert (music["present"], music["genre"], music["mood"], music["tempo"]) == (True, "Pop", "Romantic", "Slow Tempo")
    assert music["sources"] == {"present": "mllm", "genre": "mllm", "mood": "mllm", "tempo": "mllm"}
    [shot3] = [s for s in shots if s["characters"] and s["characters"][0]["looks"] == third["people"][0]["Looks"]]
    assert {o["name"]: o["shot_type"] for o in shot3["objects"]}["plants"] == "background"
    assert shot["sources"]["highlight_score"] == "mllm" and shot["sources"]["action"] == "mllm"
    assert "  Object plants (background): Background plants" in "\n".join(texts)
