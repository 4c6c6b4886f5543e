"""The calibration loop: random packets of records for human review, and the accuracy gate.

As in the paper, results are sampled into packets of 200-500 records; reviewers mark each
record correct or not; a packet below the standard (90 %) goes back for repair, and a drama
is calibrated when every packet passes. Packets are seeded, so the same drama always
yields the same packets and a re-review is comparable.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

MIN_PACKET, MAX_PACKET = 200, 500
ACCURACY_GATE = 0.90


@dataclass(frozen=True)
class Packet:
    packet_id: str
    record_ids: list[str]


@dataclass(frozen=True)
class PacketGrade:
    packet_id: str
    reviewed: int
    correct: int
    accuracy: float | None
    status: str  # pending, passed, needs_repair


def make_packets(record_ids: list[str], *, drama_id: str, seed: int = 0, target_size: int = 300) -> list[Packet]:
    """Shuffle (seeded) and cut into packets of 200-500; fewer records than 200 make one packet."""
    if not MIN_PACKET <= target_size <= MAX_PACKET:
        raise ValueError(f"packet size {target_size} is outside {MIN_PACKET}-{MAX_PACKET}")
    ids = sorted(record_ids)
    random.Random(f"{drama_id}:{seed}").shuffle(ids)
    count = max(1, round(len(ids) / target_size))
    while count > 1 and len(ids) / count < MIN_PACKET:
        count -= 1
    while len(ids) / count > MAX_PACKET:
        count += 1
    bounds = [round(i * len(ids) / count) for i in range(count + 1)]
    return [Packet(f"{drama_id}-p{n:03d}", ids[bounds[n]:bounds[n + 1]]) for n in range(count)]


def grade_packet(packet: Packet, reviews: dict[str, bool]) -> PacketGrade:
    """`reviews`: record id -> judged correct. A packet counts only once fully reviewed."""
    reviewed = [r for r in packet.record_ids if r in reviews]
    correct = sum(1 for r in reviewed if reviews[r])
    if len(reviewed) < len(packet.record_ids):
        return PacketGrade(packet.packet_id, len(reviewed), correct, None, "pending")
    accuracy = correct / len(reviewed) if reviewed else 0.0
    return PacketGrade(packet.packet_id, len(reviewed), correct, round(accuracy, 4),
                       "passed" if accuracy >= ACCURACY_GATE else "needs_repair")


def load_reviews(text: str) -> dict[str, bool]:
    """Reviews as JSON: {"record_id": true|false, ...} or [{"record_id": ..., "correct": ...}]."""
    data = json.loads(text)
    if isinstance(data, dict):
        return {str(k): bool(v) for k, v in data.items()}
    return {str(row["record_id"]): bool(row["correct"]) for row in data}
