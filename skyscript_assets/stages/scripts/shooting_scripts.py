"""Assembling the shooting scripts of an episode from everything the earlier stages found.

    scripts = assemble_episode(drama_id, episode_id, shots, identity_of)

`shots` are `ShotEvidence` records in time order: the shot's span, its valid keyframes with
their cleaned annotation, refined characters and grounded objects, a few grey frames for
the camera movement, and its audio. The result is one `ShootingScript` per scene. Nothing
is invented: a field no stage could fill stays None.

Per shot: the camera angle from the keyframes' lines, the shot size reconciled between the
MLLM and the face / body boxes, the characters placed in 3D from the shot's face boxes (and
Depth Anything's depth where it ran). Per scene: the shots' cameras registered to the first
one through shared characters (a projection matrix per shot), and the shots grouped into
events. `figures`, when given, counts what was measured and what disagreed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from skyscript_assets.schema import (
    AttributeConflict,
    CharacterInShot,
    ObjectInShot,
    ShootingScript,
    ShotMusic,
    ShotScript,
    Source,
)
from skyscript_assets.stages.scripts.audio import AudioSignals
from skyscript_assets.stages.scripts.camera_angle import estimate_camera_angle, shot_camera_angle
from skyscript_assets.stages.scripts.camera_motion import estimate_camera_motion
from skyscript_assets.stages.scripts.events import group_events
from skyscript_assets.stages.scripts.highlight import ShotSignals, highlight_scores
from skyscript_assets.stages.scripts.layout import (
    FrameLayout,
    camera_intrinsics,
    orbit_view,
    place_frame,
    register_shots,
)
from skyscript_assets.stages.scripts.scenes import ShotForScene, group_scenes
from skyscript_assets.stages.scripts.shot_size import (
    SIZE_ORDER,
    ReconciledSize,
    is_person,
    measured_shot_size,
    reconcile_shot_size,
)


@dataclass
class KeyframeEvidence:
    item: str
    rgb: np.ndarray
    annotation: dict  # schema.FrameAnnotation as JSON
    characters: list[dict] = field(default_factory=list)  # CharacterRefinement as JSON, with "line"
    objects: list[dict] = field(default_factory=list)  # {"name", "box", "phantom", "description"?}


@dataclass
class ShotEvidence:
    index: int
    start_s: float
    end_s: float
    keyframes: list[KeyframeEvidence]
    frames_gray: list[np.ndarray] = field(default_factory=list)
    sample_fps: float = 6.0
    audio: AudioSignals | None = None


def assemble_episode(
    drama_id: str,
    episode_id: str,
    shots: list[ShotEvidence],
    identity_of: dict[tuple[str, int], tuple[str, str]],
    figures: Counter | None = None,
) -> list[ShootingScript]:
    """`identity_of[(keyframe item, person index)] = (character id, name)` from the drama's clustering."""
    figures = Counter() if figures is None else figures
    if not shots:
        return []
    scene_inputs = []
    for shot in shots:
        first = shot.keyframes[0] if shot.keyframes else None
        scene = (first.annotation.get("scene") or {}) if first else {}
        people = {
            identity_of.get((k.item, i), ("", ""))[0] for k in shot.keyframes for i, _ in enumerate(k.characters)
        } - {""}
        scene_inputs.append(
            ShotForScene(
                shot.start_s,
                shot.end_s,
                first.rgb if first else None,
                scene.get("name"),
                first.annotation.get("scene_description") if first else None,
                frozenset(people),
            )
        )
    assembled = [_shot_script(number, shot, identity_of) for number, shot in enumerate(shots, start=1)]
    shot_scripts = [script for script, _, _ in assembled]
    for script, frame, size in assembled:
        figures["shots"] += 1
        figures["shots_with_camera_angle"] += script.camera_angle is not None
        figures["shot_size_measured"] += size.measured is not None
        figures["shot_size_disagreements"] += size.disagreed
        if frame is not None:
            figures["occlusion_conflicts"] += len(frame.conflicts)
            figures["occlusion_conflicts_unresolved"] += len(frame.unresolved)
    signals = [
        ShotSignals(
            s.end_s - s.start_s,
            [
                (c.vad.valence, c.vad.arousal, c.vad.dominance)
                for c in s.characters
                if c.vad and None not in (c.vad.valence, c.vad.arousal, c.vad.dominance)
            ],
            shot.audio.loudness_db if shot.audio else None,
        )
        for s, shot in zip(shot_scripts, shots)
    ]
    loudness = any(s.loudness_db is not None for s in signals)
    for script, score, signal in zip(shot_scripts, highlight_scores(signals), signals):
        script.highlight_score = score
        # the shot's own signal: the MLLM's VAD, else loudness and cut pace, else the pace alone
        script.sources["highlight_score"] = (
            Source.MLLM if signal.vad else Source.AUDIO if loudness else Source.MEASURED
        )
    scripts = []
    for number, group in enumerate(group_scenes(scene_inputs), start=1):
        members = [shots[i] for i in group.shot_indices]
        descriptions = [
            k.annotation.get("scene_description")
            for s in members
            for k in s.keyframes
            if k.annotation.get("scene_description")
        ]
        scene_shots = [shot_scripts[i] for i in group.shot_indices]
        for shot_number, shot in enumerate(scene_shots, start=1):
            shot.shot_number = shot_number
        _scene_layout(scene_shots, [assembled[i][1] for i in group.shot_indices], figures)
        figures["events"] += assign_events(scene_shots)
        scripts.append(
            ShootingScript(
                drama_id=drama_id,
                episode_id=episode_id,
                scene_number=number,
                interior=group.interior,
                location=group.location,
                time_of_day=group.time_of_day,
                description=descriptions[0] if descriptions else None,
                shots=scene_shots,
            )
        )
    return scripts


def assign_events(shots: list[ShotScript]) -> int:
    """Number the scene's events and give each shot its event's text (a reviewer's event stays);
    returns how many events there are."""
    events = group_events(shots)
    for event in events:
        for i in event.shot_indices:
            shot = shots[i]
            shot.event_number = event.number
            if shot.sources.get("event") != Source.REVIEWER:
                shot.event = event.text
                if event.text is not None:
                    shot.sources["event"] = Source.DERIVED
    return len(events)


def _shot_script(
    number: int, shot: ShotEvidence, identity_of
) -> tuple[ShotScript, FrameLayout | None, ReconciledSize]:
    characters: dict[str, CharacterInShot] = {}
    sizes, measured_sizes, angles = [], [], []
    objects: dict[str, ObjectInShot] = {}
    face_boxes: dict[str, tuple] = {}  # the shot's keyframes taken as one view: each character's first face box
    inverse_depth: dict[str, float | None] = {}
    intrinsics = None
    for keyframe in shot.keyframes:
        people = keyframe.annotation.get("people") or []
        height, width = keyframe.rgb.shape[:2]
        angles.append(estimate_camera_angle(keyframe.rgb).angle)
        faces = [r["face_box"] for r in keyframe.characters if r.get("face_box")]
        bodies = [
            o["box"] for o in keyframe.objects if o.get("box") and not o.get("phantom") and is_person(o.get("name"))
        ]
        measured = measured_shot_size([b[3] - b[1] for b in faces], [b[3] - b[1] for b in bodies], height)
        if measured:
            measured_sizes.append(measured)
        for index, person in enumerate(people):
            refined = keyframe.characters[index] if index < len(keyframe.characters) else {}
            character_id, name = identity_of.get(
                (keyframe.item, index), (f"{keyframe.item}#{index}", f"Person {index + 1}")
            )
            if person.get("shot_type"):
                sizes.append(person["shot_type"])
            if refined.get("face_box") and character_id not in face_boxes:
                face_boxes[character_id] = tuple(float(v) for v in refined["face_box"])
                inverse_depth[character_id] = refined.get("depth")
                intrinsics = camera_intrinsics(width, height) if intrinsics is None else intrinsics
            if character_id in characters:
                continue
            characters[character_id] = character_in_shot(character_id, name, person, refined)
        named = {o["name"]: o for o in keyframe.annotation.get("objects") or [] if o.get("name")}
        for obj in keyframe.objects:
            if obj.get("name") and obj["name"] not in objects:
                said = named.get(obj["name"], {})
                objects[obj["name"]] = ObjectInShot(
                    name=obj["name"],
                    description=obj.get("description") or said.get("description"),
                    shot_type=said.get("shot_type"),
                    box=tuple(obj["box"]) if obj.get("box") else None,
                    phantom=bool(obj.get("phantom")),
                )
        for obj in named.values():
            if obj["name"] not in objects:
                objects[obj["name"]] = ObjectInShot(
                    name=obj["name"], description=obj.get("description"), shot_type=obj.get("shot_type")
                )
    motion = estimate_camera_motion(shot.frames_gray, shot.sample_fps).movement if len(shot.frames_gray) >= 2 else None
    mllm_size = min(sizes, key=SIZE_ORDER.index) if sizes and all(s in SIZE_ORDER for s in sizes) else None
    size = reconcile_shot_size(mllm_size, min(measured_sizes, key=SIZE_ORDER.index) if measured_sizes else None)
    frame = place_frame(face_boxes, inverse_depth, intrinsics) if face_boxes else None
    actions = [c.action for c in characters.values() if c.action]
    focus = main_subject(list(characters.values()))
    bgm = [k.annotation.get("bgm") for k in shot.keyframes if k.annotation.get("bgm")]
    script = ShotScript(
        shot_number=number,
        start_s=round(shot.start_s, 3),
        end_s=round(shot.end_s, 3),
        shot_size=size.size,
        camera_angle=shot_camera_angle(angles),
        camera_movement=motion,
        focus=focus,
        action="; ".join(actions) or None,
        characters=list(characters.values()),
        objects=list(objects.values()),
        music=shot_music(bgm, shot.audio),
    )
    sources = {
        "shot_size": Source.MEASURED if size.size is not None and size.size != size.mllm else Source.MLLM,
        "camera_angle": Source.MEASURED,
        "camera_movement": Source.MEASURED,
        "focus": Source.DERIVED,
        "action": Source.MLLM,
    }
    script.sources = {k: v for k, v in sources.items() if getattr(script, k) is not None}
    return script, frame, size


def main_subject(characters: list[CharacterInShot]) -> str | None:
    """The shot's main subject (FOCUS): the first character who speaks, else the first one."""
    return max(characters, key=lambda c: bool(c.line)).name if characters else None


def character_in_shot(character_id: str, name: str, person: dict, refined: dict) -> CharacterInShot:
    """A person of a keyframe as the shooting script holds them: the MLLM's annotation, with
    the refinement's adopted age, gender and emotion (DeepFace's only where it conflicted with
    the MLLM) and the dialogue line that was read. A refinement written before it carried
    `sources` (an older stage version) gives the MLLM's values."""
    vad = person.get("vad")
    sources: dict[str, Source] = {}
    values: dict[str, str | None] = {}
    for attribute in ("age", "gender", "emotion"):
        if "sources" in refined:
            values[attribute], source = refined.get(attribute), refined["sources"].get(attribute)
        else:
            values[attribute], source = person.get(attribute), "mllm" if person.get(attribute) else None
        if source:
            sources[attribute] = Source(source)
    if "line_source" in refined:
        line, line_source = refined.get("line"), refined.get("line_source")
    else:
        line = refined.get("line") or person.get("line")
        line_source = ("subtitle" if refined.get("line") else Source.MLLM_GUESS.value) if line else None
    conflicts = [AttributeConflict(**d) for d in refined.get("disputes") or []]
    return CharacterInShot(
        character_id=character_id,
        name=name,
        type=person.get("type"),
        age=values["age"],
        gender=values["gender"],
        emotion=values["emotion"],
        vad=vad if vad and all(vad.get(k) is not None for k in ("valence", "arousal", "dominance")) else None,
        looks=person.get("looks"),
        action=person.get("actions"),
        posture=refined.get("posture"),
        shot_type=person.get("shot_type"),
        line=line,
        line_source=line_source if line else None,
        temperament=person.get("temperament"),
        facial_attractiveness=person.get("facial_attractiveness"),
        sources=sources,
        conflicts=conflicts,
    )


def tempo_word(bpm: float | None) -> str | None:
    """A tempo in the MLLM's words from a measured BPM."""
    if bpm is None:
        return None
    return "Slow Tempo" if bpm < 90 else "Moderate Tempo" if bpm <= 120 else "Fast Tempo"


def shot_music(bgm: list[dict], audio: AudioSignals | None) -> ShotMusic | None:
    """The shot's background music: the MLLM's BGM of its keyframes (majority presence, first
    genre, mood and tempo word) merged with the audio analysis. Where the audio track was
    analysed it decides presence and the BPM (it is heard; the MLLM only saw frames), and the
    MLLM's genre and mood are kept only when both say music plays; without audio the MLLM's
    BGM stands alone. None when neither said anything."""
    said = [b for b in bgm if b.get("present") is not None]
    mllm_present = (sum(bool(b["present"]) for b in said) * 2 >= len(said)) if said else None
    first = {k: next((b.get(k) for b in bgm if b.get(k)), None) for k in ("genre", "mood", "tempo")}
    if audio is None and mllm_present is None and not any(first.values()):
        return None
    music, sources = ShotMusic(), {}
    if audio is not None:
        music.present, sources["present"] = audio.music, Source.AUDIO
        if audio.music and audio.tempo_bpm is not None:
            music.tempo_bpm, sources["tempo_bpm"] = audio.tempo_bpm, Source.AUDIO
    elif mllm_present is not None or any(first.values()):
        music.present, sources["present"] = mllm_present if mllm_present is not None else True, Source.MLLM
    if music.present and mllm_present is not False:
        for key in ("genre", "mood", "tempo"):
            if first[key]:
                setattr(music, key, first[key])
                sources[key] = Source.MLLM
    if music.tempo is None and music.tempo_bpm is not None:
        music.tempo, sources["tempo"] = tempo_word(music.tempo_bpm), Source.AUDIO
    music.sources = sources
    return music


def _scene_layout(shots: list[ShotScript], frames: list[FrameLayout | None], figures: Counter) -> None:
    """Characters' locations in the scene frame (the first placed shot's camera) and each
    placed shot's projection matrix."""
    for shot, frame, pose in zip(shots, frames, register_shots(frames)):
        if frame is None or pose is None:
            continue
        figures["shots_registered" if pose.registered else "shots_unregistered"] += 1
        located = {p.character_id: pose.to_scene(p.location_cm) for p in frame.placed}
        for character in shot.characters:
            if character.character_id in located:
                character.location_cm = tuple(round(float(c), 1) for c in located[character.character_id])
        shot.projection_matrix = [[round(float(v), 4) for v in row] for row in pose.matrix(frame.intrinsics)]
        shot.layout_registered = pose.registered


def scene_view_png(script: ShootingScript, yaw_deg: float = 40.0, size: tuple[int, int] = (320, 180)) -> bytes | None:
    """The scene's characters (where registered shots placed them first) drawn from a virtual
    camera turned `yaw_deg` from the scene's first camera; None when nobody was placed."""
    import cv2

    positions, labels = {}, {}
    for shot in script.shots:
        if not shot.layout_registered:
            continue
        for character in shot.characters:
            if character.location_cm is not None and character.character_id not in positions:
                positions[character.character_id], labels[character.character_id] = (
                    character.location_cm,
                    character.name,
                )
    _, image = orbit_view(positions, yaw_deg, size, labels)
    return None if image is None else cv2.imencode(".png", image[:, :, ::-1])[1].tobytes()


@dataclass
class DramaIdentities:
    """The drama's characters: who each face observation is, and the library of characters."""

    identity_of: dict[tuple[str, int], tuple[str, str]]  # (keyframe item, person index) -> (id, name)
    characters: list  # identities.Character, in order of first appearance
    first_seen: dict[str, tuple[int, float, str]]  # character id -> (episode position, time, observation id)
    crops: dict[str, np.ndarray]  # observation id -> face crop (RGB)
    embedding_kind: str  # "deepface" or "hog"


def identities_for_drama(faces: list[tuple], embedder=None) -> DramaIdentities:
    """Cluster the drama's face crops into characters: (item, person index, keyframe RGB, face
    box, line, (episode position, time)[, name caption]). `embedder` (models.faces.FaceEmbedder,
    DeepFace's ArcFace) gives the embeddings where its weights are present; otherwise the HOG
    fallback."""
    from skyscript_assets.stages.scripts.identities import FaceObservation, cluster_identities, face_descriptor

    kept, crops = [], {}
    for item, person, rgb, box, line, order, *caption in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        crop = rgb[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
        if crop.size:
            kept.append((f"{item}#{person}", line, order, caption[0] if caption else None))
            crops[f"{item}#{person}"] = crop
    if embedder is not None and kept:
        embeddings, kind = embedder.embed([crops[o] for o, *_ in kept]), "deepface"
    else:
        embeddings, kind = [face_descriptor(crops[o]) for o, *_ in kept], "hog"
    observations = [
        FaceObservation(o, e, order, lines=(line,) if line else (), caption=caption)
        for (o, line, order, caption), e in zip(kept, embeddings)
    ]
    order_of = {o.observation_id: o.time_order for o in observations}
    identity_of, first_seen = {}, {}
    characters = cluster_identities(observations, embedding_kind=kind)
    for character in characters:
        first = min(character.observation_ids, key=lambda o: order_of[o])
        first_seen[character.character_id] = (*order_of[first], first)
        for observation_id in character.observation_ids:
            item, person = observation_id.rsplit("#", 1)
            identity_of[(item, int(person))] = (character.character_id, character.name)
    return DramaIdentities(identity_of, characters, first_seen, crops, kind)


@dataclass(frozen=True)
class LibraryEntry:
    character_id: str
    name: str
    named_from: str
    observations: int
    first_item: str  # the keyframe of its first appearance
    first_time_s: float
    face_jpeg: bytes  # its face at that first appearance
    first_episode_id: str = ""  # the episode of first_item, where the caller knows it


def character_library(identities: DramaIdentities) -> list[LibraryEntry]:
    """One entry per character of the drama, with the face crop of its first appearance."""
    import cv2

    entries = []
    for character in identities.characters:
        _, time_s, observation_id = identities.first_seen[character.character_id]
        face = cv2.imencode(".jpg", identities.crops[observation_id][:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[
            1
        ].tobytes()
        entries.append(
            LibraryEntry(
                character.character_id,
                character.name,
                character.named_from,
                len(character.observation_ids),
                observation_id.rsplit("#", 1)[0],
                float(time_s),
                face,
            )
        )
    return entries


def sample_shot_frames(
    video_path: str, shots: list[tuple[int, float, float]], fps: float = 6.0, width: int = 320
) -> dict[int, list[np.ndarray]]:
    """Grey frames of each shot, about `fps` per second, `width` wide, in one decode."""
    import av
    import cv2

    frames: dict[int, list[np.ndarray]] = {index: [] for index, _, _ in shots}
    ordered = sorted(shots, key=lambda s: s[1])
    next_time = {index: start for index, start, _ in ordered}
    with av.open(video_path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            shot = next((s for s in ordered if s[1] <= t < s[2]), None)
            if shot is None or t < next_time[shot[0]]:
                continue
            grey = frame.to_ndarray(format="gray")
            height = max(1, int(round(grey.shape[0] * width / grey.shape[1])))
            frames[shot[0]].append(cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA))
            next_time[shot[0]] = t + 1.0 / fps
    return frames
