"""Implicit character relationships, time-varying, from the shooting scripts of an episode.

For each pair of characters and each scene they share, the graph records co-presence
(shots together), mean 3D distance, mean valence while together, and who speaks right
after whom. Edges carry the scene number, so the relationship can be followed over time
rather than fixed as one triple. `compatibility` is the pairing ("shipping") score the
paper derives from temperament and facial attractiveness.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from skyscript_assets.models.text_generation import GenerationFailed, derived_seed
from skyscript_assets.schema import LossRecord, ShootingScript

WARM_WORDS = {"friendly", "gentle", "warm", "kind", "cheerful", "calm", "relaxed", "caring", "playful", "optimistic"}
COLD_WORDS = {"cold", "arrogant", "aloof", "hostile", "cruel", "stern", "irritable", "domineering", "selfish"}


@dataclass
class RelationshipEdge:
    a: str
    b: str
    scene_number: int
    shots_together: int = 0
    mean_distance_cm: float | None = None
    mean_valence_together: float | None = None
    replies_a_to_b: int = 0  # a speaks right after b
    replies_b_to_a: int = 0
    _distances: list[float] = field(default_factory=list, repr=False)
    _valences: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def relationship_graph(scripts: list[ShootingScript]) -> list[RelationshipEdge]:
    edges: dict[tuple[str, str, int], RelationshipEdge] = {}

    def edge(x: str, y: str, scene: int) -> tuple[RelationshipEdge, bool]:
        a, b = sorted((x, y))
        key = (a, b, scene)
        if key not in edges:
            edges[key] = RelationshipEdge(a, b, scene)
        return edges[key], x == a

    for script in sorted(scripts, key=lambda s: (s.episode_id, s.scene_number)):
        last_speaker: str | None = None
        for shot in script.shots:
            people = {c.character_id: c for c in shot.characters}
            for x, y in itertools.combinations(sorted(people), 2):
                e, _ = edge(x, y, script.scene_number)
                e.shots_together += 1
                if people[x].location_cm and people[y].location_cm:
                    e._distances.append(math.dist(people[x].location_cm, people[y].location_cm))
                for person in (people[x], people[y]):
                    if person.vad and person.vad.valence is not None:
                        e._valences.append(person.vad.valence)
            for character in shot.characters:
                if not character.line:
                    continue
                if last_speaker and last_speaker != character.character_id:
                    e, speaker_is_a = edge(character.character_id, last_speaker, script.scene_number)
                    if speaker_is_a:
                        e.replies_a_to_b += 1
                    else:
                        e.replies_b_to_a += 1
                last_speaker = character.character_id
    for e in edges.values():
        e.mean_distance_cm = round(sum(e._distances) / len(e._distances), 1) if e._distances else None
        e.mean_valence_together = round(sum(e._valences) / len(e._valences), 2) if e._valences else None
    return sorted(edges.values(), key=lambda e: (e.scene_number, e.a, e.b))


def compatibility(
    temperament_a: str | None,
    attractiveness_a: float | None,
    temperament_b: str | None,
    attractiveness_b: float | None,
) -> float | None:
    """0..1: warmth of both temperaments and closeness and level of facial attractiveness (1-5)."""
    if attractiveness_a is None or attractiveness_b is None:
        return None
    warmth = (_warmth(temperament_a) + _warmth(temperament_b)) / 2  # 0..1
    level = (attractiveness_a + attractiveness_b - 2) / 8  # 0..1
    closeness = 1 - abs(attractiveness_a - attractiveness_b) / 4  # 0..1
    return round(0.4 * warmth + 0.3 * level + 0.3 * closeness, 3)


def _warmth(temperament: str | None) -> float:
    words = set((temperament or "").lower().replace(",", " ").split())
    warm, cold = len(words & WARM_WORDS), len(words & COLD_WORDS)
    return 0.5 if warm == cold else (1.0 if warm > cold else 0.0)


def edges_by_pair(edges: list[RelationshipEdge]) -> dict[tuple[str, str], list[RelationshipEdge]]:
    """The time line of each pair: its edges in scene order."""
    grouped: dict[tuple[str, str], list[RelationshipEdge]] = defaultdict(list)
    for e in edges:
        grouped[(e.a, e.b)].append(e)
    return dict(grouped)


# --- the release's relationship tables ------------------------------------------------------

STAGE = "relationships"
MAX_LABEL_CHARS = 60


def relationship_label_prompt(script: ShootingScript, edge: RelationshipEdge, names: dict[str, str]) -> str:
    a, b = names.get(edge.a, edge.a), names.get(edge.b, edge.b)
    lines = [
        f"{c.name}: {c.line}"
        for shot in script.shots
        for c in shot.characters
        if c.line and c.character_id in (edge.a, edge.b)
    ]
    valence = (
        f"mean valence together {edge.mean_valence_together} on 1-9"
        if edge.mean_valence_together is not None
        else "valence unknown"
    )
    return (
        f"In one scene of a short drama ({script.heading}), {a} and {b} share {edge.shots_together} shots, "
        f"{valence}. {script.description or ''}\n"
        + ("Their lines:\n" + "\n".join(lines) + "\n" if lines else "")
        + f"Relationship label: in at most four words, how do {a} and {b} relate in this scene "
        "(e.g. rivals, old friends, wary strangers)? Answer with the label only."
    )


def clean_label(text: str) -> str | None:
    """The first non-empty line, without quotes or a trailing full stop, at most MAX_LABEL_CHARS."""
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    line = line.strip("\"'`*").rstrip(".").strip()
    return line[:MAX_LABEL_CHARS] or None


def relationship_tables(
    drama_id: str, scripts: list[ShootingScript], generator=None, seed: int = 0
) -> tuple[list[dict], list[dict], list[LossRecord]]:
    """(edge rows, character-pair rows, losses) for the release: the graph per episode, each
    edge labelled by `generator` (a models.text_generation.TextGenerator) when given, and the
    compatibility of every pair that shares a scene."""
    names: dict[str, str] = {}
    temperaments: dict[str, Counter] = defaultdict(Counter)
    attractiveness: dict[str, list[float]] = defaultdict(list)
    by_episode: dict[str, list[ShootingScript]] = defaultdict(list)
    for script in scripts:
        by_episode[script.episode_id].append(script)
        for shot in script.shots:
            for c in shot.characters:
                names.setdefault(c.character_id, c.name)
                if c.temperament:
                    temperaments[c.character_id][c.temperament.strip().lower()] += 1
                if c.facial_attractiveness is not None:
                    attractiveness[c.character_id].append(c.facial_attractiveness)
    edge_rows, losses = [], []
    together: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # scenes, shots
    for episode_id in sorted(by_episode):
        scenes = {s.scene_number: s for s in by_episode[episode_id]}
        for e in relationship_graph(by_episode[episode_id]):
            label = None
            if generator is not None:
                item = f"{drama_id}/{episode_id}/scene-{e.scene_number:04d}/{e.a}+{e.b}"
                try:
                    [text] = generator.generate(
                        relationship_label_prompt(scenes[e.scene_number], e, names),
                        n=1,
                        seed=derived_seed(seed, item),
                        temperature=0.0,
                        max_tokens=16,
                    )[:1] or [""]
                    label = clean_label(text)
                except GenerationFailed as exc:
                    losses.append(
                        LossRecord(stage=STAGE, item=item, reason="llm_failed", detail=f"{item}: label: {exc}")
                    )
            edge_rows.append(
                {
                    "drama_id": drama_id,
                    "episode_id": episode_id,
                    **_edge_columns(e, names),
                    "label": label,
                    "label_model_id": generator.model_id if generator is not None and label else None,
                }
            )
            together[(e.a, e.b)][0] += 1
            together[(e.a, e.b)][1] += e.shots_together
    pair_rows = []
    for (a, b), (scene_count, shot_count) in sorted(together.items()):
        temperament_a, temperament_b = (_most_common(temperaments[x]) for x in (a, b))
        attractive_a, attractive_b = (round(sum(v) / len(v), 2) if (v := attractiveness[x]) else None for x in (a, b))
        pair_rows.append(
            {
                "drama_id": drama_id,
                "character_a": a,
                "character_b": b,
                "name_a": names[a],
                "name_b": names[b],
                "temperament_a": temperament_a,
                "temperament_b": temperament_b,
                "facial_attractiveness_a": attractive_a,
                "facial_attractiveness_b": attractive_b,
                "compatibility": compatibility(temperament_a, attractive_a, temperament_b, attractive_b),
                "scenes_together": scene_count,
                "shots_together": shot_count,
            }
        )
    return edge_rows, pair_rows, losses


def _edge_columns(e: RelationshipEdge, names: dict[str, str]) -> dict:
    return {
        "scene_number": e.scene_number,
        "character_a": e.a,
        "character_b": e.b,
        "name_a": names.get(e.a),
        "name_b": names.get(e.b),
        "shots_together": e.shots_together,
        "mean_distance_cm": e.mean_distance_cm,
        "mean_valence_together": e.mean_valence_together,
        "replies_a_to_b": e.replies_a_to_b,
        "replies_b_to_a": e.replies_b_to_a,
    }


def _most_common(counts: Counter) -> str | None:
    # ties go to the alphabetically first, so equal inputs give equal outputs
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else None
