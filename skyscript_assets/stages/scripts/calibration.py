"""The calibration loop: sampled packets of records for human review, the accuracy gate, and
the reviewers' corrections applied.

As in the paper, a drama's results are sampled into packets of 200-500 records (one record =
one shot), seeded and stratified across its episodes; reviewers correct them in Label
Studio, starting from the pipeline's fields as pre-annotations; a packet's accuracy is
1 - fields changed / fields checked; a packet below the standard (90 %) goes back for
repair, and a drama is calibrated when every packet passes. A reviewer's correction then
replaces the field in the shooting script (`apply_review`), with `reviewer` as its source
and the value it replaced kept in the shot's `corrections` (for audit; not released).

    packets = make_packets(record_ids, drama_id="d", strata=episode_of_record)
    tasks = [label_studio_task(record_id, image_url, shot_fields(shot), text, "skyscript/3") ...]
    reviews = load_reviews(exported_json, predictions)       # the reviewers' Label Studio export
    grades = [grade_packet(p, reviews) for p in packets]
    corrections = apply_review(shot, reviews[record_id])     # the shot corrected in place
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field

from skyscript_assets.schema import CharacterInShot, Correction, ShootingScript, ShotScript, Source

MIN_PACKET, MAX_PACKET = 200, 500
ACCURACY_GATE = 0.90
SAMPLE_SHARE = 0.05  # of a drama's shots reviewed once it has more than one packet's worth


@dataclass(frozen=True)
class Packet:
    packet_id: str
    record_ids: list[str]


@dataclass(frozen=True)
class RecordReview:
    """One reviewed record: how many of its fields the reviewer checked, how many they changed,
    and the values they gave the changed fields (field -> value; None: removed)."""

    fields_checked: int
    fields_changed: int
    corrections: dict[str, str | None] = field(default_factory=dict, compare=False)
    reviewer: str | None = field(default=None, compare=False)  # Label Studio's completed_by
    review_file: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PacketGrade:
    packet_id: str
    reviewed: int  # records reviewed
    fields_checked: int
    fields_changed: int
    accuracy: float | None  # 1 - fields changed / fields checked, once every record is reviewed
    status: str  # pending, passed, needs_repair


def sample_size(records: int, target_size: int = 300, share: float = SAMPLE_SHARE) -> int:
    """How many of a drama's records are reviewed: all of them up to one packet's worth, else
    `share` of them, at least one packet of `target_size`."""
    if records <= target_size:
        return records
    return min(records, max(target_size, math.ceil(records * share)))


def make_packets(
    record_ids: list[str],
    *,
    drama_id: str,
    seed: int = 0,
    target_size: int = 300,
    strata: dict[str, str] | None = None,
    share: float = SAMPLE_SHARE,
) -> list[Packet]:
    """A seeded sample of the records (`sample_size`), stratified across `strata` (record ->
    episode: every episode gets its proportional share, at least one record while the sample
    allows), cut into packets of 200-500 that each span the episodes; fewer records than
    200 make one packet of all of them."""
    if not MIN_PACKET <= target_size <= MAX_PACKET:
        raise ValueError(f"packet size {target_size} is outside {MIN_PACKET}-{MAX_PACKET}")
    if not record_ids:
        return []
    rng = random.Random(f"{drama_id}:{seed}")
    groups: dict[str, list[str]] = defaultdict(list)
    for record_id in sorted(record_ids):
        groups[(strata or {}).get(record_id, "")].append(record_id)
    quota = _allocate(
        {g: len(ids) for g, ids in groups.items()}, sample_size(len(record_ids), target_size, share), rng
    )
    picked = {g: rng.sample(groups[g], quota[g]) for g in sorted(groups)}
    ids = [r for column in _round_robin(list(picked.values())) for r in column]
    count = max(1, round(len(ids) / target_size))
    while count > 1 and len(ids) / count < MIN_PACKET:
        count -= 1
    while len(ids) / count > MAX_PACKET:
        count += 1
    bounds = [round(i * len(ids) / count) for i in range(count + 1)]
    return [Packet(f"{drama_id}-p{n:03d}", ids[bounds[n] : bounds[n + 1]]) for n in range(count)]


def _allocate(sizes: dict[str, int], total: int, rng: random.Random) -> dict[str, int]:
    """`total` spread over the strata in proportion to their sizes (largest remainder, seeded
    ties), one each first while `total` covers every stratum."""
    quota = dict.fromkeys(sizes, 0)
    if total >= len(sizes):
        quota = dict.fromkeys(sizes, 1)
    left = total - sum(quota.values())
    room = {g: sizes[g] - quota[g] for g in sizes}
    if left > 0 and sum(room.values()):
        share = {g: left * room[g] / sum(room.values()) for g in sizes}
        for g in sizes:
            quota[g] += int(share[g])
        order = sorted(sizes, key=lambda g: (-(share[g] - int(share[g])), rng.random()))
        for g in order[: total - sum(quota.values())]:
            quota[g] += 1
    elif left < 0:  # fewer records sampled than strata: a seeded choice of strata
        quota = dict.fromkeys(sizes, 0)
        for g in rng.sample(sorted(sizes), total):
            quota[g] = 1
    return {g: min(quota[g], sizes[g]) for g in sizes}


def _round_robin(columns: list[list[str]]) -> list[list[str]]:
    """Interleave the strata, so that consecutive records (and so every packet) span them."""
    rows = []
    for i in range(max((len(c) for c in columns), default=0)):
        rows.append([c[i] for c in columns if i < len(c)])
    return rows


def grade_packet(packet: Packet, reviews: dict[str, RecordReview]) -> PacketGrade:
    """Accuracy = 1 - fields changed / fields checked; a packet counts only once fully reviewed."""
    reviewed = [reviews[r] for r in packet.record_ids if r in reviews]
    checked = sum(r.fields_checked for r in reviewed)
    changed = sum(r.fields_changed for r in reviewed)
    if len(reviewed) < len(packet.record_ids):
        return PacketGrade(packet.packet_id, len(reviewed), checked, changed, None, "pending")
    accuracy = 1 - changed / checked if checked else 0.0
    return PacketGrade(
        packet.packet_id,
        len(reviewed),
        checked,
        changed,
        round(accuracy, 4),
        "passed" if accuracy >= ACCURACY_GATE else "needs_repair",
    )


# --- Label Studio ------------------------------------------------------------------------
# Packets go to reviewers as Label Studio tasks (its JSON import format): the keyframe, the
# shot's context, and the pipeline's fields as a pre-annotation ("predictions"). Reviewers
# correct what is wrong and export the project as JSON; each exported task's annotation is
# compared field by field with the pre-annotation.

SIZES = ["extreme_close_up", "close_up", "medium", "full", "wide"]
ANGLES = ["eye_level", "high", "low", "overhead", "dutch"]
MOVEMENTS = ["static", "pan", "tilt", "zoom", "handheld"]
CHOICE_FIELDS = {"shot_size": SIZES, "camera_angle": ANGLES, "camera_movement": MOVEMENTS}
# characters: "Emma, Bo"; line and emotion: "Emma: ... / Bo: ..." (one entry per character)
TEXT_FIELDS = ["characters", "focus", "action", "line", "emotion", "event"]
REVIEW_FIELDS = [*CHOICE_FIELDS, *TEXT_FIELDS]
PER_CHARACTER = {"line": "line", "emotion": "emotion"}  # review field -> CharacterInShot attribute
ENTRY_SEPARATOR = " / "


def label_config() -> str:
    """The labeling interface (Label Studio XML) that matches `label_studio_task`."""
    choices = "\n".join(
        f'  <Header value="{name}"/>\n  <Choices name="{name}" toName="image" choice="single" showInline="true">\n'
        + "\n".join(f'    <Choice value="{value}"/>' for value in values)
        + "\n  </Choices>"
        for name, values in CHOICE_FIELDS.items()
    )
    texts = "\n".join(
        f'  <Header value="{name}"/>\n  <TextArea name="{name}" toName="image" maxSubmissions="1" editable="true"/>'
        for name in TEXT_FIELDS
    )
    return f"""<View>
  <Image name="image" value="$image"/>
  <Text name="context" value="$shooting_script"/>
{choices}
{texts}
</View>
"""


def shot_fields(shot) -> dict[str, str | None]:
    """The reviewable fields of a `schema.ShotScript`, as the reviewer sees them."""
    per_character = {
        name: ENTRY_SEPARATOR.join(
            f"{c.name}: {getattr(c, attribute)}" for c in shot.characters if getattr(c, attribute)
        )
        or None
        for name, attribute in PER_CHARACTER.items()
    }
    return {
        "shot_size": shot.shot_size,
        "camera_angle": shot.camera_angle,
        "camera_movement": shot.camera_movement,
        "characters": ", ".join(c.name for c in shot.characters) or None,
        "focus": shot.focus,
        "action": shot.action,
        "line": per_character["line"],
        "emotion": per_character["emotion"],
        "event": shot.event,
    }


def label_studio_task(
    record_id: str, image_url: str | None, fields: dict[str, str | None], context: str, model_version: str
) -> dict:
    """One task in Label Studio's import format, the pipeline's fields as its prediction."""
    return {
        "data": {"record_id": record_id, "image": image_url or "", "shooting_script": context},
        "predictions": [{"model_version": model_version, "result": _results(fields)}],
    }


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


def reviews_from_label_studio(
    export: list[dict], predictions: dict[str, dict[str, str | None]]
) -> dict[str, RecordReview]:
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
        changed = sorted(n for n in names if predicted.get(n, "").strip() != reviewed.get(n, "").strip())
        reviewer = latest.get("completed_by")
        if isinstance(reviewer, dict):
            reviewer = reviewer.get("email") or reviewer.get("id")
        reviews[record_id] = RecordReview(
            len(names),
            len(changed),
            {n: reviewed.get(n) for n in changed},
            str(reviewer) if reviewer is not None else None,
        )
    return reviews


def load_reviews(text: str, predictions: dict[str, dict[str, str | None]] | None = None) -> dict[str, RecordReview]:
    """Reviews from JSON: a Label Studio export (a list of tasks with `annotations`), or the
    short forms {"record_id": true|false|{field: value}} and [{"record_id": ..., "correct": ...,
    "corrections": {field: value}}]. A bare true/false counts as one field checked and, when
    false, changed; corrections count like a Label Studio review (the pipeline's fields
    checked, those given a different value changed) and are applied."""
    data = json.loads(text)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "annotations" in data[0]:
        return reviews_from_label_studio(data, predictions or {})
    if isinstance(data, dict):
        rows = [(str(k), v if isinstance(v, dict) else None, v) for k, v in data.items()]
    else:
        rows = [(str(row["record_id"]), row.get("corrections"), row.get("correct", True)) for row in data]
    reviews = {}
    for record_id, corrections, correct in rows:
        if corrections is None:
            reviews[record_id] = RecordReview(1, 0 if bool(correct) else 1)
            continue
        predicted = {k: v for k, v in ((predictions or {}).get(record_id) or {}).items() if v is not None}
        given = {
            k: (str(v).strip() or None) if v is not None else None
            for k, v in corrections.items()
            if k in REVIEW_FIELDS
        }
        changed = {k: v for k, v in given.items() if (predicted.get(k) or "").strip() != (v or "")}
        checked = max(1, len(set(predicted) | {k for k, v in given.items() if v is not None}))
        reviews[record_id] = RecordReview(checked, len(changed), changed)
    return reviews


# --- corrections applied ------------------------------------------------------------------------


def apply_review(shot: ShotScript, review: RecordReview) -> list[Correction]:
    """The reviewer's values written into `shot` (in place), each with `reviewer` as its source;
    returns the corrections with the values they replaced, also appended to `shot.corrections`.

    Choice fields and focus, action and event replace the shot's value (None when the reviewer
    removed it). `characters` renames the shot's characters ("Emma, Bo": kept by name, the
    others renamed in order; names beyond the shot's characters added, characters not named
    removed). `line` and `emotion` ("Emma: ... / Bo: ...") set each named character's value and
    clear it for a character left out; an entry naming nobody in the shot is not applied."""
    made: list[Correction] = []

    def note(name: str, target: str, original, corrected, applied: bool = True, why: str | None = None):
        made.append(
            Correction(
                field=name,
                target=target,
                original=_text(original),
                corrected=_text(corrected),
                reviewer=review.reviewer,
                review_file=review.review_file,
                applied=applied,
                note=why,
            )
        )

    renamed: dict[str, str] = {}  # old name (lower case) -> the character's id
    for name in REVIEW_FIELDS:
        if name not in review.corrections:
            continue
        value = review.corrections[name]
        if name in CHOICE_FIELDS:
            choice = _choice(value, CHOICE_FIELDS[name])
            if value is not None and choice is None:
                note(name, name, getattr(shot, name), value, False, f"not one of {', '.join(CHOICE_FIELDS[name])}")
                continue
            note(name, name, getattr(shot, name), choice)
            _set(shot, name, choice)
        elif name in ("focus", "action", "event"):
            note(name, name, getattr(shot, name), value)
            _set(shot, name, value)
        elif name == "characters":
            _rename(shot, value, renamed, note)
        else:
            _per_character(shot, name, PER_CHARACTER[name], value, renamed, note)
    shot.corrections.extend(made)
    return made


def record_id(script: ShootingScript, shot: ShotScript) -> str:
    """The calibration record of a shot: `<drama>/<episode>/scene-0001/shot-001`."""
    return f"{script.script_id}/shot-{shot.shot_number:03d}"


def correct_script(script: ShootingScript, reviews: dict[str, RecordReview]) -> list[tuple[str, Correction]]:
    """The reviews of a scene's shots applied (`apply_review`, in place) and what the scene
    derives from corrected fields derived again: its events (names, actions and the first line
    quoted) and each shot's focus, unless a reviewer gave those too. Returns (record id,
    correction) pairs; nothing changes without a correction."""
    from skyscript_assets.stages.scripts.shooting_scripts import assign_events, main_subject

    made = []
    for shot in script.shots:
        review = reviews.get(record_id(script, shot))
        if review is not None and review.corrections:
            made += [(record_id(script, shot), c) for c in apply_review(shot, review)]
    if made:
        assign_events(script.shots)
        for shot in script.shots:
            if shot.sources.get("focus") != Source.REVIEWER:
                shot.focus = main_subject(shot.characters)
    return made


def _set(shot: ShotScript, name: str, value) -> None:
    setattr(shot, name, value)
    shot.sources[name] = Source.REVIEWER


def _choice(value: str | None, choices: list[str]) -> str | None:
    if value is None:
        return None
    key = re.sub(r"[^a-z]+", "_", value.strip().lower()).strip("_")
    key = {
        "close": "close_up",
        "closeup": "close_up",
        "extreme_closeup": "extreme_close_up",
        "medium_shot": "medium",
        "full_shot": "full",
        "wide_shot": "wide",
    }.get(key, key)
    return key if key in choices else None


def _rename(shot: ShotScript, value: str | None, renamed: dict[str, str], note) -> None:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    before = {c.character_id: c.name for c in shot.characters}
    kept = {c.character_id for c in shot.characters if c.name.lower() in {n.lower() for n in names}}
    new_names = [n for n in names if n.lower() not in {c.name.lower() for c in shot.characters}]
    others = [c for c in shot.characters if c.character_id not in kept]
    for character, name in zip(others, new_names):
        renamed[character.name.lower()] = character.character_id
        note("characters", f"characters[{character.character_id}].name", character.name, name)
        character.name = name
        character.sources["name"] = Source.REVIEWER
        kept.add(character.character_id)
    for name in new_names[len(others) :]:
        character_id = f"reviewed-{len(shot.characters) + 1}"
        note("characters", f"characters[{character_id}]", None, name)
        shot.characters.append(
            CharacterInShot(character_id=character_id, name=name, sources={"name": Source.REVIEWER})
        )
        kept.add(character_id)
    for character in [c for c in shot.characters if c.character_id not in kept]:
        note("characters", f"characters[{character.character_id}]", before[character.character_id], None)
        shot.characters.remove(character)


def _per_character(
    shot: ShotScript, name: str, attribute: str, value: str | None, renamed: dict[str, str], note
) -> None:
    by_name = {c.name.lower(): c for c in shot.characters}
    by_name.update({old: c for old, cid in renamed.items() for c in shot.characters if c.character_id == cid})
    given: dict[str, str] = {}
    for entry in [e.strip() for e in (value or "").split(ENTRY_SEPARATOR.strip()) if e.strip()]:
        speaker, colon, said = entry.partition(":")
        character = by_name.get(speaker.strip().lower()) if colon else None
        if character is None and len(shot.characters) == 1:  # one character: the entry is theirs
            character, said = shot.characters[0], entry
        if character is None:
            note(name, name, None, entry, False, "names no character of the shot")
            continue
        given[character.character_id] = said.strip()
    for character in shot.characters:
        new = given.get(character.character_id) or None
        old = getattr(character, attribute)
        if (old or None) == new:
            continue
        note(name, f"characters[{character.character_id}].{attribute}", old, new)
        setattr(character, attribute, new)
        if attribute == "line":
            character.line_source = Source.REVIEWER.value if new else None
        else:
            character.sources[attribute] = Source.REVIEWER


def _text(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def reviewed_values(script: dict) -> list[tuple[int, str, str | None]]:
    """(shot number, field, value) of every value a reviewer gave in a stored or released
    shooting script (its `reviewer` sources), e.g. to show a correction in a released pair."""
    found = []
    for shot in script.get("shots") or []:
        number = shot.get("shot_number")
        found += [
            (number, name, _text(shot.get(name)))
            for name, source in (shot.get("sources") or {}).items()
            if source == Source.REVIEWER.value
        ]
        for character in shot.get("characters") or []:
            who = character.get("name")
            if character.get("line_source") == Source.REVIEWER.value:
                found.append((number, f"{who}.line", character.get("line")))
            found += [
                (number, f"{who}.{name}", _text(character.get(name)))
                for name, source in (character.get("sources") or {}).items()
                if source == Source.REVIEWER.value
            ]
    return found


def simulated_review(tasks: list[dict], *, corrections: int, seed: int = 0) -> list[dict]:
    """A Label Studio export as a reviewer would return it: every prediction accepted, except
    `corrections` fields (seeded choice) set to another value. For the demo and tests."""
    rng = random.Random(seed)
    exported = [
        {
            "id": n,
            "data": t["data"],
            "annotations": [{"id": n, "was_cancelled": False, "result": copy.deepcopy(t["predictions"][0]["result"])}],
        }
        for n, t in enumerate(tasks, start=1)
    ]
    candidates = [(task, result) for task in exported for result in task["annotations"][0]["result"]]
    for task, result in rng.sample(candidates, min(corrections, len(candidates))):
        if result["type"] == "choices":
            current = result["value"]["choices"][0]
            result["value"]["choices"] = [next(v for v in CHOICE_FIELDS[result["from_name"]] if v != current)]
        else:
            result["value"]["text"] = [result["value"]["text"][0] + " (corrected)"]
    return exported
