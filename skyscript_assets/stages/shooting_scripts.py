"""Assembling the shooting scripts of an episode from everything the earlier stages found.

    scripts = assemble_episode(drama_id, episode_id, shots, identity_of)

`shots` are `ShotEvidence` records in time order: the shot's span, its valid keyframes with
their cleaned annotation, refined characters and grounded objects, a few grey frames for
the camera movement, and its audio. The result is one `ShootingScript` per scene. Nothing
is invented: a field no stage could fill stays None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..schema import CharacterInShot, ObjectInShot, ShootingScript, ShotMusic, ShotScript
from .audio import AudioSignals
from .camera_motion import estimate_camera_motion
from .highlight import ShotSignals, highlight_scores
from .layout import camera_intrinsics, place_character
from .scenes import ShotForScene, group_scenes

SIZE_ORDER = ["extreme_close_up", "close_up", "medium", "full", "wide"]


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


def assemble_episode(drama_id: str, episode_id: str, shots: list[ShotEvidence],
                     identity_of: dict[tuple[str, int], tuple[str, str]]) -> list[ShootingScript]:
    """`identity_of[(keyframe item, person index)] = (character id, name)` from the drama's clustering."""
    if not shots:
        return []
    scene_inputs = []
    for shot in shots:
        first = shot.keyframes[0] if shot.keyframes else None
        scene = (first.annotation.get("scene") or {}) if first else {}
        people = {identity_of.get((k.item, i), ("", ""))[0] for k in shot.keyframes for i, _ in enumerate(k.characters)} - {""}
        scene_inputs.append(ShotForScene(shot.start_s, shot.end_s, first.rgb if first else None, scene.get("name"),
                                         first.annotation.get("scene_description") if first else None, frozenset(people)))
    shot_scripts = [_shot_script(number, shot, identity_of) for number, shot in enumerate(shots, start=1)]
    scores = highlight_scores([ShotSignals(s.end_s - s.start_s,
                                           [(c.vad.valence, c.vad.arousal, c.vad.dominance) for c in s.characters
                                            if c.vad and None not in (c.vad.valence, c.vad.arousal, c.vad.dominance)],
                                           shot.audio.loudness_db if shot.audio else None)
                               for s, shot in zip(shot_scripts, shots)])
    for script, score in zip(shot_scripts, scores):
        script.highlight_score = score
    scripts = []
    for number, group in enumerate(group_scenes(scene_inputs), start=1):
        members = [shots[i] for i in group.shot_indices]
        descriptions = [k.annotation.get("scene_description") for s in members for k in s.keyframes if k.annotation.get("scene_description")]
        scene_shots = [shot_scripts[i] for i in group.shot_indices]
        for event_number, shot in enumerate(scene_shots, start=1):
            shot.shot_number = event_number
        scripts.append(ShootingScript(drama_id=drama_id, episode_id=episode_id, scene_number=number,
                                      interior=group.interior, location=group.location, time_of_day=group.time_of_day,
                                      description=descriptions[0] if descriptions else None, shots=scene_shots))
    return scripts


def _shot_script(number: int, shot: ShotEvidence, identity_of) -> ShotScript:
    characters: dict[str, CharacterInShot] = {}
    sizes = []
    objects: dict[str, ObjectInShot] = {}
    for keyframe in shot.keyframes:
        people = keyframe.annotation.get("people") or []
        height, width = keyframe.rgb.shape[:2]
        intrinsics = camera_intrinsics(width, height)
        for index, person in enumerate(people):
            refined = keyframe.characters[index] if index < len(keyframe.characters) else {}
            character_id, name = identity_of.get((keyframe.item, index), (f"{keyframe.item}#{index}", f"Person {index + 1}"))
            if person.get("shot_type"):
                sizes.append(person["shot_type"])
            if character_id in characters:
                continue
            location = None
            if refined.get("face_box"):
                location = place_character(character_id, tuple(refined["face_box"]), intrinsics, is_face=True).location_cm
            vad = person.get("vad")
            characters[character_id] = CharacterInShot(
                character_id=character_id, name=name, emotion=(refined.get("face") or {}).get("emotion") or person.get("emotion"),
                vad=vad if vad and all(vad.get(k) is not None for k in ("valence", "arousal", "dominance")) else None,
                looks=person.get("looks"), action=person.get("actions"), posture=refined.get("posture"),
                location_cm=location, line=refined.get("line") or person.get("line"),
                temperament=person.get("temperament"), facial_attractiveness=person.get("facial_attractiveness"))
        for obj in keyframe.objects:
            if obj.get("name") and obj["name"] not in objects:
                objects[obj["name"]] = ObjectInShot(name=obj["name"], description=obj.get("description"),
                                                    box=tuple(obj["box"]) if obj.get("box") else None, phantom=bool(obj.get("phantom")))
        for obj in keyframe.annotation.get("objects") or []:
            if obj.get("name") and obj["name"] not in objects:
                objects[obj["name"]] = ObjectInShot(name=obj["name"], description=obj.get("description"))
    motion = estimate_camera_motion(shot.frames_gray, shot.sample_fps).movement if len(shot.frames_gray) >= 2 else None
    size = min(sizes, key=SIZE_ORDER.index) if sizes and all(s in SIZE_ORDER for s in sizes) else None
    actions = [c.action for c in characters.values() if c.action]
    focus = max(characters.values(), key=lambda c: bool(c.line)).name if characters else None
    music = None
    if shot.audio is not None:
        music = ShotMusic(present=shot.audio.music, tempo_bpm=shot.audio.tempo_bpm if shot.audio.music else None)
    return ShotScript(shot_number=number, start_s=round(shot.start_s, 3), end_s=round(shot.end_s, 3), shot_size=size,
                      camera_angle=None, camera_movement=motion, focus=focus, action="; ".join(actions) or None,
                      characters=list(characters.values()), objects=list(objects.values()), music=music,
                      event_number=None, event=None)


def identities_for_drama(faces: list[tuple[str, int, np.ndarray, tuple, str | None, tuple[int, float]]]
                         ) -> dict[tuple[str, int], tuple[str, str]]:
    """Cluster the drama's face crops into characters: (item, person index, keyframe RGB,
    face box, line, (episode position, time)) -> {(item, person index): (id, name)}."""
    from .identities import FaceObservation, cluster_identities, face_descriptor

    observations = []
    for item, person, rgb, box, line, order in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        crop = rgb[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
        if crop.size == 0:
            continue
        observations.append(FaceObservation(f"{item}#{person}", face_descriptor(crop), order, lines=(line,) if line else ()))
    identity_of = {}
    for character in cluster_identities(observations, embedding_kind="hog"):
        for observation_id in character.observation_ids:
            item, person = observation_id.rsplit("#", 1)
            identity_of[(item, int(person))] = (character.character_id, character.name)
    return identity_of


def sample_shot_frames(video_path: str, shots: list[tuple[int, float, float]], fps: float = 6.0,
                       width: int = 320) -> dict[int, list[np.ndarray]]:
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
