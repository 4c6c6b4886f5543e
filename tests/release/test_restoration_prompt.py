"""Restorations from the whole shooting script: every field of it reaches the request the LLM
gets (a real HTTP request to the fake chat server, read back as the server recorded it), and
greedy decoding with n > 1 works and says how each restoration was decoded."""

from __future__ import annotations

import json

import pytest
from fake_chat_server import FakeChatServer

from skyscript_assets.models.text_generation import load_text_generator
from skyscript_assets.schema import (
    CharacterInShot,
    ContinuousEmotion,
    ObjectInShot,
    ShootingScript,
    ShotMusic,
    ShotScript,
)
from skyscript_assets.stages.release.restore import RestorationPlan, restore_script, structured_fields
from skyscript_assets.stages.scripts.table1 import shooting_script_text


def whole_script(scenario: str = "restore") -> ShootingScript:
    emma = CharacterInShot(
        character_id="char-1",
        name="Emma",
        type="woman",
        age="34",
        gender="female",
        emotion="sad",
        vad=ContinuousEmotion(valence=2.5, arousal=6.5, dominance=3.5),
        looks="red scarf",
        action="turns away",
        posture="standing",
        shot_type="medium",
        location_cm=(-40.0, 165.0, 310.0),
        line="You came back.",
        line_source="subtitle",
        temperament="warm",
        facial_attractiveness=4,
    )
    leo = CharacterInShot(
        character_id="char-2",
        name="Leo",
        location_cm=(85.5, 172.0, 290.0),
        vad=ContinuousEmotion(valence=7, arousal=3, dominance=8),
        line="Only for the cup.",
        line_source="mllm_guess",
    )
    return ShootingScript(
        drama_id="prompt-drama",
        episode_id="ep01",
        scene_number=4,
        interior=True,
        location="Coffee shop",
        time_of_day="night",
        description=f"A café after closing. scenario={scenario}",
        shots=[
            ShotScript(
                shot_number=1,
                start_s=0.0,
                end_s=2.5,
                shot_size="medium",
                camera_angle="eye_level",
                camera_movement="pan",
                focus="Emma",
                action="Emma waits by the window",
                highlight_score=0.87,
                event_number=3,
                event="Emma confronts Leo",
                music=ShotMusic(present=True, genre="piano", mood="melancholic", tempo="Slow Tempo", tempo_bpm=72),
                characters=[emma, leo],
                objects=[
                    ObjectInShot(name="teacup", description="a chipped blue teacup", shot_type="close_up"),
                    ObjectInShot(
                        name="umbrella", description="a wet black umbrella", shot_type="background", phantom=True
                    ),
                ],
            ),
        ],
    )


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


def _generator(server):
    return load_text_generator(
        "openai", base_url=server.base_url, model="restorer", backoff_s=0.01, max_retries=1, timeout_s=5
    )


def _fields_in(prompt: str) -> dict:
    return json.loads(prompt.split("Structured fields (JSON):\n", 1)[1].split("\n\n", 1)[0])


def test_every_field_of_the_shooting_script_reaches_the_request(server):
    script = whole_script()
    rows, losses = restore_script(script, _generator(server), RestorationPlan(restorations=3, seed=1))
    assert len(server.bodies) == 1 and len(rows) == 3 and not losses
    prompt = server.bodies[0]["messages"][0]["content"]

    # the Table 1 text, whole
    table1 = shooting_script_text(script).strip()
    assert f"Shooting script (Table 1):\n{table1}\n" in prompt
    for line in (
        "Highlight Score: 0.87",
        "3D location of Emma: (-40,165,310)",
        "3D location of Leo: (86,172,290)",
        "Main Subject — Event 3: Emma confronts Leo",
        'Emma says: "You came back."',
    ):
        assert line in prompt, line

    # the structured fields, each one
    fields = _fields_in(prompt)
    assert fields == structured_fields(script)
    assert fields["scene"] == {
        "number": 4,
        "heading": "INT. COFFEE SHOP - NIGHT",
        "description": "A café after closing. scenario=restore",
    }
    [shot] = fields["shots"]
    assert shot["highlight_score"] == 0.87
    assert (shot["event_number"], shot["event"]) == (3, "Emma confronts Leo")
    assert (shot["shot_size"], shot["camera_angle"], shot["camera_movement"], shot["focus"]) == (
        "medium",
        "eye_level",
        "pan",
        "Emma",
    )
    assert shot["action"] == "Emma waits by the window" and (shot["start_s"], shot["end_s"]) == (0.0, 2.5)
    assert {k: shot["music"][k] for k in ("present", "genre", "mood", "tempo", "tempo_bpm")} == {
        "present": True,
        "genre": "piano",
        "mood": "melancholic",
        "tempo": "Slow Tempo",
        "tempo_bpm": 72.0,
    }
    emma, leo = shot["characters"]
    assert emma["location_cm"] == [-40.0, 165.0, 310.0] and leo["location_cm"] == [85.5, 172.0, 290.0]
    assert emma["vad"] == {"valence": 2.5, "arousal": 6.5, "dominance": 3.5}
    assert leo["vad"] == {"valence": 7.0, "arousal": 3.0, "dominance": 8.0}
    assert (emma["line"], emma["line_source"]) == ("You came back.", "subtitle")
    assert (leo["line"], leo["line_source"]) == ("Only for the cup.", "mllm_guess")
    assert {k: emma[k] for k in ("name", "age", "gender", "emotion", "looks", "action", "posture", "shot_type")} == {
        "name": "Emma",
        "age": "34",
        "gender": "female",
        "emotion": "sad",
        "looks": "red scarf",
        "action": "turns away",
        "posture": "standing",
        "shot_type": "medium",
    }
    teacup, umbrella = shot["objects"]
    assert teacup == {"name": "teacup", "description": "a chipped blue teacup", "shot_type": "close_up"}
    assert umbrella["shot_type"] == "background" and umbrella["phantom"] is True
    # audit trails and geometry stay out of the prompt
    assert "character_id" not in emma and "sources" not in emma and "projection_matrix" not in shot

    # the faithful draft is still there for the form, and the style last (a shared prefix per script)
    assert "Faithful rendering (Fountain draft):\nINT. COFFEE SHOP - NIGHT" in prompt
    assert prompt.rindex("Style of this version:") > prompt.index("Structured fields (JSON):")


def test_greedy_n_4_restorations_say_one_greedy_and_three_sampled(server):
    """Temperature 0 with n = 4: one greedy request, then three sampled; each row says which."""
    rows, losses = restore_script(
        whole_script(), _generator(server), RestorationPlan(restorations=4, temperature=0.0, seed=2)
    )
    assert not losses
    assert [(r["restoration_index"], r["decoding"]) for r in rows] == [
        (0, "greedy"),
        (1, "sampled"),
        (2, "sampled"),
        (3, "sampled"),
    ]
    assert [b["temperature"] for b in server.bodies] == [0.0, 0.7]
    sampled = restore_script(whole_script(), _generator(server), RestorationPlan(restorations=2, temperature=0.9))[0]
    assert [r["decoding"] for r in sampled] == ["sampled", "sampled"]


class _DraftAndModel:
    """The tiny LM's texts, each set under the faithful draft: the LLM decodes for real (greedy
    and sampled), while the restoration filters see a screenplay."""

    def __init__(self, generator, draft: str):
        self.generator, self.draft = generator, draft
        self.model_id, self.max_concurrency = generator.model_id, 1

    def generate(self, prompt, **kwargs):
        return [
            f"{self.draft}\n\n{' '.join(text.split()) or 'A pause.'}\n"
            for text in self.generator.generate(prompt, **kwargs)
        ]


def test_greedy_n_4_on_a_tiny_causal_lm_works_and_says_how_each_was_decoded(tmp_path):
    pytest.importorskip("torch")
    from tiny_lm import build_tiny_causal_lm

    from skyscript_assets.stages.release.fountain import render_fountain

    lm = load_text_generator("transformers", model_path=str(build_tiny_causal_lm(tmp_path / "lm")), device="cpu")
    script = whole_script("tiny")
    plan = RestorationPlan(restorations=4, temperature=0.0, max_tokens=16, seed=5)
    rows, losses = restore_script(script, _DraftAndModel(lm, render_fountain(script)), plan)
    lm.close()
    # four texts came back: none lost to "Greedy methods ... do not support num_return_sequences"
    assert not [loss for loss in losses if loss.reason == "llm_failed"]
    plan_decodings = ["greedy", "sampled", "sampled", "sampled"]
    assert rows and all(r["decoding"] == plan_decodings[r["restoration_index"]] for r in rows)
    assert (rows[0]["restoration_index"], rows[0]["decoding"]) == (0, "greedy")
    assert "sampled" in {r["decoding"] for r in rows[1:]}
    assert len(rows) + len(losses) == 4 and all(r["model_id"].startswith("transformers:") for r in rows)
