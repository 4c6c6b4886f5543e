"""The calibration loop: random packets of records for human review, and the accuracy gate.

As in the paper, results are sampled into packets of 200-500 records (one record = one shot);
reviewers correct them in Label Studio, starting from the pipeline's fields as pre-annotations;
a packet's accuracy is 1 - fields changed / fields checked; a packet below the standard (90 %)
goes back for repair, and a drama is calibrated when every packet passes. Packets are seeded,
so the same drama always yields the same packets and a re-review is comparable.

    packets = make_packets(record_ids, drama_id="d")
    tasks = [label_studio_task(record_id, image_url, shot_fields(shot), text, "skyscript/2") ...]
    reviews = load_reviews(exported_json, predictions)       # the reviewers' Label Studio export
    grades = [grade_packet(p, reviews) for p in packets]
"""

from __future__ import annotations

import copy
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
class RecordReview:
    """One reviewed record: how many of its fields the reviewer checked, and how many they changed."""

    fields_checked: int
    fields_changed: int


@dataclass(frozen=True)
class PacketGrade:
    packet_id: str
    reviewed: int  # records reviewed
    fields_checked: int
    fields_changed: int
    accuracy: float | None  # 1 - fields changed / fields checked, once every record is reviewed
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


def grade_packet(packet: Packet, reviews: dict[str, RecordReview]) -> PacketGrade:
    """Accuracy = 1 - fields changed / fields checked; a packet counts only once fully reviewed."""
    reviewed = [reviews[r] for r in packet.record_ids if r in reviews]
    checked = sum(r.fields_checked for r in reviewed)
    changed = sum(r.fields_changed for r in reviewed)
    if len(reviewed) < len(packet.record_ids):
        return PacketGrade(packet.packet_id, len(reviewed), checked, changed, None, "pending")
    accuracy = 1 - changed / checked if checked else 0.0
    return PacketGrade(packet.packet_id, len(reviewed), checked, changed, round(accuracy, 4),
                       "passed" if accuracy >= ACCURACY_GATE else "needs_repair")


# --- Label Studio ------------------------------------------------------------------------
# Packets go to reviewers as Label Studio tasks (its JSON import format): the keyframe, the
# shot's context, and the pipeline's fields as a pre-annotation ("predictions"). Reviewers
# correct what is wrong and export the project as JSON; each exported task's annotation is
# compared field by field with the pre-annotation.

SIZES = ["extreme_close_up", "close_up", "medium", "full", "wide"]
ANGLES = ["eye_level", "high", "low", "overhead", "dutch"]
MOVEMENTS = ["static", "pan", "tilt", "zoom", "handheld"]
CHOICE_FIELDS = {"shot_size": SIZES, "camera_angle": ANGLES, "camera_movement": MOVEMENTS}
TEXT_FIELDS = ["characters", "focus", "action", "line"]
REVIEW_FIELDS = [*CHOICE_FIELDS, *TEXT_FIELDS]


def label_config() -> str:
    """The labeling interface (Label Studio XML) that matches `label_studio_task`."""
    choices = "\n".join(
        f'  <Header value="{name}"/>\n  <Choices name="{name}" toName="image" choice="single" showInline="true">\n'
        + "\n".join(f'    <Choice value="{value}"/>' for value in values) + "\n  </Choices>"
        for name, values in CHOICE_FIELDS.items())
    texts = "\n".join(f'  <Header value="{name}"/>\n  <TextArea name="{name}" toName="image" maxSubmissions="1" editable="true"/>'
                      for name in TEXT_FIELDS)
    return f"""<View>
  <Image name="image" value="$image"/>
  <Text name="context" value="$shooting_script"/>
{choices}
{texts}
</View>
"""


def shot_fields(shot) -> dict[str, str | None]:
    """The reviewable fields of a `schema.ShotScript`, as the reviewer sees them."""
    lines = [f"{c.name}: {c.line}" for c in shot.characters if c.line]
    return {"shot_size": shot.shot_size, "camera_angle": shot.camera_angle, "camera_movement": shot.camera_movement,
            "characters": ", ".join(c.name for c in shot.characters) or None, "focus": shot.focus,
            "action": shot.action, "line": " / ".join(lines) or None}


def label_studio_task(record_id: str, image_url: str | None, fields: dict[str, str | None], context: str,
                      model_version: str) -> dict:
    """One task in Label Studio's import format, the pipeline's fields as its prediction."""
    return {"data": {"record_id": record_id, "image": image_url or "", "shooting_script": context},
            "predictions": [{"model_version": model_version, "result": _results(fields)}]}


def _results(fields: dict[str, str | None]) -> list[dict]:
    results = []
    for name, value in fields.items():
        if value is None:
            continue
        if name in CHOICE_FIELDS:
            results.append({"from_name": name, "to_name": "image", "type": "choices", "value": {"choices": [value]}})
        else:
            results.append({"from_name": name, "to_name": "image", "type": "textarea", "value": {"text": [value]}})
    return results


def _values(results: list[dict]) -> dict[str, str]:
    values = {}
    for result in results:
        value = result.get("value") or {}
        items = value.get("choices") or value.get("text") or []
        if result.get("from_name") in REVIEW_FIELDS and items:
            values[result["from_name"]] = " ".join(str(i).strip() for i in items)
    return values


def reviews_from_label_studio(export: list[dict], predictions: dict[str, dict[str, str | None]]) -> dict[str, RecordReview]:
    """A Label Studio JSON export -> the review of each record it holds. A field counts as
    checked when the pipeline filled it or the reviewer did, changed when they differ; the
    latest annotation that was not cancelled is the review. Tasks of unknown records are ignored."""
    reviews = {}
    for task in export:
        record_id = str((task.get("data") or {}).get("record_id", ""))
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if record_id not in predictions or not annotations:
            continue
        latest = max(annotations, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))
        predicted = {k: v for k, v in predictions[record_id].items() if v is not None}
        reviewed = _values(latest.get("result") or [])
        names = set(predicted) | set(reviewed)
        changed = sum(1 for n in names if predicted.get(n, "").strip() != reviewed.get(n, "").strip())
        reviews[record_id] = RecordReview(len(names), changed)
    return reviews


def load_reviews(text: str, predictions: dict[str, dict[str, str | None]] | None = None) -> dict[str, RecordReview]:
    """Reviews from JSON: a Label Studio export (a list of tasks with `annotations`), or the
    short forms {"record_id": true|false} and [{"record_id": ..., "correct": ...}], where a
    record counts as one field checked and, when judged wrong, changed."""
    data = json.loads(text)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "annotations" in data[0]:
        return reviews_from_label_studio(data, predictions or {})
    pairs = data.items() if isinstance(data, dict) else ((row["record_id"], row["correct"]) for row in data)
    return {str(k): RecordReview(1, 0 if bool(v) else 1) for k, v in pairs}


def simulated_review(tasks: list[dict], *, corrections: int, seed: int = 0) -> list[dict]:
    """A Label Studio export as a reviewer would return it: every prediction accepted, except
    `corrections` fields (seeded choice) set to another value. For the demo and tests."""
    rng = random.Random(seed)
    exported = [{"id": n, "data": t["data"], "annotations": [{"id": n, "was_cancelled": False,
                                                               "result": copy.deepcopy(t["predictions"][0]["result"])}]}
                for n, t in enumerate(tasks, start=1)]
    candidates = [(task, result) for task in exported for result in task["annotations"][0]["result"]]
    for task, result in rng.sample(candidates, min(corrections, len(candidates))):
        if result["type"] == "choices":
            current = result["value"]["choices"][0]
            result["value"]["choices"] = [next(v for v in CHOICE_FIELDS[result["from_name"]] if v != current)]
        else:
            result["value"]["text"] = [result["value"]["text"][0] + " (corrected)"]
    return exported
