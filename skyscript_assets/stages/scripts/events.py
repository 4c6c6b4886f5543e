"""Events: consecutive shots of a scene grouped into the beats of its story.

A shot continues the current event unless one of these starts a new one:
* a long gap (more than MAX_EVENT_GAP_S between the shots);
* a change of the characters present: the shot shows people and none of them is in the
  event so far;
* a change of the action: the shot's action shares no word with the event's actions;

except that a shot in which someone speaks after a line of the event answers it and
continues it (a dialogue exchange, shot / reverse shot, is one event).

The event's text is made only of what the shots say: the names present with their actions,
and the first line spoken, quoted with its speaker. Nothing is invented; an event with neither actions nor lines
has just the names, or no text at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from skyscript_assets.schema import ShotScript

MAX_EVENT_GAP_S = 3.0
MAX_EVENT_TEXT = 240
STOP_WORDS = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "at",
    "with",
    "his",
    "her",
    "their",
    "is",
    "are",
    "he",
    "she",
    "they",
    "it",
    "while",
    "for",
    "from",
    "by",
    "up",
    "down",
    "into",
    "out",
}


@dataclass
class Event:
    number: int
    shot_indices: list[int] = field(default_factory=list)
    text: str | None = None


def group_events(shots: list[ShotScript]) -> list[Event]:
    """Events of one scene's shots (in time order), numbered from 1."""
    events: list[Event] = []
    cast: set[str] = set()
    action_words: set[str] = set()
    has_line = False
    previous: ShotScript | None = None
    for index, shot in enumerate(shots):
        people = {c.character_id for c in shot.characters}
        words = _content_words(shot.action)
        speaks = any(c.line for c in shot.characters)
        answers = speaks and has_line
        new = (
            previous is None
            or shot.start_s - previous.end_s > MAX_EVENT_GAP_S
            or (not answers and bool(people and cast and not people & cast))
            or (not answers and bool(words and action_words and not words & action_words))
        )
        if new:
            events.append(Event(len(events) + 1))
            cast, action_words, has_line = set(), set(), False
        events[-1].shot_indices.append(index)
        cast |= people
        action_words |= words
        has_line = has_line or speaks
        previous = shot
    for event in events:
        event.text = event_text([shots[i] for i in event.shot_indices])
    return events


def event_text(shots: list[ShotScript]) -> str | None:
    names = list(dict.fromkeys(c.name for s in shots for c in s.characters))
    actions = list(dict.fromkeys(a.strip() for s in shots if s.action for a in s.action.split(";") if a.strip()))
    line = next(((c.name, c.line) for s in shots for c in s.characters if c.line), None)
    parts = []
    if actions:
        parts.append("; ".join(actions))
    if line:
        parts.append(f'{line[0]} says "{line[1]}"')
    text = " — ".join(parts)
    if names and (actions or not line):  # who acts; a line alone already names its speaker
        text = f"{', '.join(names)}: {text}" if text else ", ".join(names)
    if len(text) > MAX_EVENT_TEXT:
        text = text[: MAX_EVENT_TEXT - 1].rstrip() + "…"
    return text or None


def _content_words(text: str | None) -> set[str]:
    return {w for w in re.findall(r"\w+", (text or "").lower()) if w not in STOP_WORDS and len(w) > 2}
