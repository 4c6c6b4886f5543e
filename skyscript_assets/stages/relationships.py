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
from collections import defaultdict
from dataclasses import dataclass, field

from ..schema import ShootingScript

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


def compatibility(temperament_a: str | None, attractiveness_a: float | None,
                  temperament_b: str | None, attractiveness_b: float | None) -> float | None:
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
