"""The text form of a shooting script, laid out as Table 1 of the SkyScript-100M paper.

Per scene its heading and description; per shot its size, camera position, focus, action,
highlight score, the 3D location of each placed character, the camera detail, the main
subject's event and the background music; then each character (age, gender, their own shot
size, emotion, VAD, posture, action, looks, temperament, attractiveness) with their line, and
each object (its shot type: a size, foreground or background) with its description.
"""

from __future__ import annotations

from skyscript_assets.schema import CharacterInShot, ShootingScript, ShotMusic
from skyscript_assets.stages.release.fountain import SHOT_SIZE_WORDS


def shooting_script_text(script: ShootingScript) -> str:
    lines = [f"SCENE {script.scene_number} {script.heading}"]
    if script.description:
        lines.append(f"DESCRIPTION: {script.description}")
    for shot in script.shots:
        size = SHOT_SIZE_WORDS.get(shot.shot_size or "")
        lines.append("")
        lines.append(f"SHOT {shot.shot_number}: {size}" if size else f"SHOT {shot.shot_number}")
        position = ", ".join(p for p in (_words(shot.camera_angle), _words(shot.camera_movement)) if p)
        if position:
            lines.append(f"CAMERA POSITION: {position}")
        if shot.focus:
            lines.append(f"FOCUS: {shot.focus}")
        if shot.action:
            lines.append(f"ACTION: {shot.action}")
        if shot.highlight_score is not None:
            lines.append(f"Highlight Score: {shot.highlight_score:.2f}")
        for character in shot.characters:
            if character.location_cm is not None:
                x, y, z = (int(round(c)) for c in character.location_cm)
                lines.append(f"3D location of {character.name}: ({x},{y},{z})")
        lines.append(
            f"Camera Detail — Time: {shot.duration_s:.1f}s, Shot Size: {size.title() if size else 'unknown'}, "
            f"Camera Angle: {_words(shot.camera_angle) or 'unknown'}"
        )
        if shot.event_number is not None or shot.event:
            number = shot.event_number if shot.event_number is not None else "?"
            lines.append(f"Main Subject — Event {number}: {shot.event or ''}".rstrip(": "))
        if shot.music and shot.music.present:
            lines.append(f"BGM: {_music(shot.music)}")
        for character in shot.characters:
            details = _character_details(character)
            kind = f" ({character.type})" if character.type else ""
            if details or kind:
                lines.append(f"  {character.name}{kind}: {'; '.join(details)}".rstrip(": "))
            if character.line:
                lines.append(f'  {character.name} says: "{character.line}"')
        for obj in shot.objects:
            kind = f" ({_shot_type(obj.shot_type)})" if obj.shot_type else ""
            flag = " (not grounded)" if obj.phantom else ""
            lines.append(f"  Object {obj.name}{kind}{flag}: {obj.description or ''}".rstrip(": "))
    return "\n".join(lines) + "\n"


def _character_details(character: CharacterInShot) -> list[str]:
    details = [f"{label} {value}" for label, value in (("age", character.age), ("gender", character.gender)) if value]
    if character.shot_type:
        details.append(_shot_type(character.shot_type))
    if character.emotion:
        details.append(f"emotion {character.emotion}")
    vad = character.vad
    if vad and None not in (vad.valence, vad.arousal, vad.dominance):
        details.append(f"V{vad.valence:g}/A{vad.arousal:g}/D{vad.dominance:g}")
    details += [d for d in (character.posture,) if d]
    details += [
        f"{label}: {value}"
        for label, value in (
            ("action", character.action),
            ("looks", character.looks),
            ("temperament", character.temperament),
        )
        if value
    ]
    if character.facial_attractiveness is not None:
        details.append(f"attractiveness {character.facial_attractiveness:g}/5")
    return details


def _music(music: ShotMusic) -> str:
    parts = [p for p in (music.genre, music.mood, music.tempo) if p]
    if music.tempo_bpm:
        parts.append(f"{music.tempo_bpm:.0f} BPM")
    return ", ".join(parts) or "music"


def _shot_type(value) -> str:
    value = str(getattr(value, "value", value))
    return SHOT_SIZE_WORDS.get(value, value.replace("_", " ").upper()).lower()


def _words(value: str | None) -> str:
    return value.replace("_", " ").title() if value else ""
