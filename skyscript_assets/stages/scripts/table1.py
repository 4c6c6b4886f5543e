"""The text form of a shooting script, laid out as Table 1 of the SkyScript-100M paper."""

from __future__ import annotations

from skyscript_assets.schema import ShootingScript
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
        lines.append(f"Camera Detail — Time: {shot.duration_s:.1f}s, Shot Size: {size.title() if size else 'unknown'}, "
                     f"Camera Angle: {_words(shot.camera_angle) or 'unknown'}")
        if shot.event_number is not None or shot.event:
            lines.append(f"Main Subject — Event {shot.event_number if shot.event_number is not None else '?'}: {shot.event or ''}".rstrip(": "))
        for character in shot.characters:
            details = [d for d in (character.emotion, character.posture, character.looks) if d]
            if character.vad and character.vad.valence is not None:
                details.append(f"V{character.vad.valence:g}/A{character.vad.arousal:g}/D{character.vad.dominance:g}")
            if details:
                lines.append(f"  {character.name}: {'; '.join(details)}")
            if character.line:
                lines.append(f'  {character.name} says: "{character.line}"')
        for obj in shot.objects:
            flag = " (not grounded)" if obj.phantom else ""
            lines.append(f"  Object {obj.name}{flag}: {obj.description or ''}".rstrip(": "))
        if shot.music and shot.music.present:
            tempo = f", {shot.music.tempo_bpm:.0f} BPM" if shot.music.tempo_bpm else ""
            lines.append(f"  BGM: {', '.join(p for p in (shot.music.genre, shot.music.mood) if p) or 'music'}{tempo}")
    return "\n".join(lines) + "\n"


def _words(value: str | None) -> str:
    return value.replace("_", " ").title() if value else ""
