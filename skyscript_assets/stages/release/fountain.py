"""Screenplays in Fountain form: the deterministic renderer and the parser-backed reader.

`render_fountain` turns one shooting script into one faithful screenplay: the scene
heading, its description, each shot as action (shot size and camera on their own line),
and every line of dialogue under its speaker's cue. It is the offline default restoration
and the reference the LLM restorations are compared with.

`read_fountain` parses text with screenplain, an independent Fountain parser, and returns
what the restoration filters need (headings, speakers, dialogue, action).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from skyscript_assets.schema import ShootingScript, ShotScript

SHOT_SIZE_WORDS = {
    "extreme_close_up": "EXTREME CLOSE UP",
    "close_up": "CLOSE UP",
    "medium": "MEDIUM SHOT",
    "full": "FULL SHOT",
    "wide": "WIDE SHOT",
}


def render_fountain(script: ShootingScript) -> str:
    blocks = [f"{script.heading} #{script.scene_number}#"]
    if script.description:
        blocks.append(_action(script.description))
    for shot in script.shots:
        blocks.extend(_shot_blocks(shot))
    return "\n\n".join(blocks).strip() + "\n"


def _shot_blocks(shot: ShotScript) -> list[str]:
    blocks = []
    camera = [SHOT_SIZE_WORDS.get(shot.shot_size or "", "SHOT")]
    if shot.camera_angle:
        camera.append(shot.camera_angle.replace("_", " ").upper())
    if shot.camera_movement and shot.camera_movement != "static":
        camera.append(shot.camera_movement.upper())
    subject = f" ON {shot.focus.upper()}" if shot.focus else ""
    # "!" forces Fountain to read an all-caps line as action, not as a character cue.
    blocks.append(f"!{', '.join(camera)}{subject}")
    described = []
    if shot.action:
        described.append(shot.action)
    for character in shot.characters:
        parts = [character.name]
        if character.posture:
            parts.append(character.posture)
        if character.action:
            parts.append(character.action)
        elif character.emotion:
            parts.append(f"looks {character.emotion}")
        if len(parts) > 1:
            described.append(" ".join(parts))
    if shot.music and shot.music.present:
        mood = " ".join(p for p in (shot.music.mood, shot.music.genre) if p)
        described.append(f"Music plays{': ' + mood if mood else ''}.")
    if described:
        blocks.append(_action(". ".join(d.rstrip(".") for d in described) + "."))
    for character in shot.characters:
        if character.line:
            cue = character.name.upper()
            parenthetical = f"\n({character.emotion.lower()})" if character.emotion else ""
            blocks.append(f"{cue}{parenthetical}\n{_one_paragraph(character.line)}")
    return blocks


def _action(text: str) -> str:
    return _one_paragraph(text)


def _one_paragraph(text: str) -> str:
    # Blank lines end a Fountain element; keep each element one paragraph.
    return " ".join(text.split())


@dataclass
class FountainDocument:
    headings: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    dialogue: list[str] = field(default_factory=list)
    action: list[str] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)


def read_fountain(text: str) -> FountainDocument:
    from screenplain.parsers.fountain import parse
    from screenplain.types import Action, Dialog, DualDialog, Slug, Transition

    document = FountainDocument()
    for paragraph in parse(io.StringIO(text)):
        if isinstance(paragraph, Slug):
            document.headings.append(str(paragraph.line))
        elif isinstance(paragraph, Dialog):
            document.speakers.append(str(paragraph.character).split("(")[0].strip())
            document.dialogue.extend(str(line) for is_parenthetical, line in paragraph.blocks if not is_parenthetical)
        elif isinstance(paragraph, DualDialog):
            for dialog in (paragraph.left, paragraph.right):
                document.speakers.append(str(dialog.character).split("(")[0].strip())
        elif isinstance(paragraph, Action):
            document.action.extend(str(line) for line in paragraph.lines)
        elif isinstance(paragraph, Transition):
            document.transitions.append(str(paragraph.line))
    return document
