"""Script restoration: many screenplays per shooting script, filtered and deduplicated.

    variants = style_variants(n, seed)                  # diverse style controls
    prompt = restoration_prompt(script, style)          # for an LLM (n samples per request)
    kept, losses = filter_restorations(script, texts)   # parse, names, length, near-duplicates

The generation itself goes through a text backend (an OpenAI-compatible server with `n`
samples per request, lmdeploy or transformers); offline, `render_fountain` gives one
faithful restoration per shooting script.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..schema import LossRecord, ShootingScript
from .fountain import read_fountain

STAGE = "restored_scripts"
GENRES = ["drama", "romance", "thriller", "comedy", "mystery", "family"]
TONES = ["restrained", "tense", "warm", "playful", "melancholic", "urgent"]
LENGTHS = {"short": (0.6, "keep it brief"), "medium": (1.0, "keep the original length"), "long": (1.6, "add texture and beats")}
# A restoration this much shorter or longer than the faithful rendering is off the rails.
MIN_LENGTH_RATIO, MAX_LENGTH_RATIO = 0.3, 4.0
NEAR_DUPLICATE_JACCARD = 0.85


@dataclass(frozen=True)
class RestorationStyle:
    genre: str
    tone: str
    length: str
    language: str = "en"

    def describe(self) -> str:
        return f"{self.tone} {self.genre}, {self.length} ({LENGTHS[self.length][1]}), in {self.language}"


def style_variants(n: int, seed: int, language: str = "en") -> list[RestorationStyle]:
    """`n` style controls, cycling through every combination before repeating (seeded)."""
    combos = [RestorationStyle(g, t, length, language) for g in GENRES for t in TONES for length in LENGTHS]
    random.Random(seed).shuffle(combos)
    return [combos[i % len(combos)] for i in range(n)]


def restoration_prompt(script: ShootingScript, style: RestorationStyle, reference: str) -> str:
    return (
        "You are a screenwriter. Rewrite the shot-by-shot record below as a screenplay scene in "
        "Fountain format: the scene heading first, then action paragraphs, then each spoken line "
        "under its speaker's name in capitals. Keep every character and every spoken line; you may "
        f"rephrase action and add beats. Style: {style.describe()}.\n\n"
        f"Shot record (Fountain draft):\n{reference}"
    )


def check_restoration(script: ShootingScript, text: str, reference_length: int) -> LossRecord | None:
    """None when `text` is a usable restoration of `script`, else the loss with its reason."""
    item = script.script_id
    if not text or not text.strip():
        return LossRecord(stage=STAGE, item=item, reason="empty", detail=f"{item}: empty restoration")
    ratio = len(text) / max(1, reference_length)
    if not MIN_LENGTH_RATIO <= ratio <= MAX_LENGTH_RATIO:
        return LossRecord(stage=STAGE, item=item, reason="length_out_of_bounds",
                          detail=f"{item}: {len(text)} characters, {ratio:.2f}x the faithful rendering")
    try:
        document = read_fountain(text)
    except Exception as exc:  # noqa: BLE001 - an unparseable text is a loss, whatever the parser raised
        return LossRecord(stage=STAGE, item=item, reason="not_fountain", detail=f"{item}: Fountain parser failed ({type(exc).__name__})")
    if not document.headings:
        return LossRecord(stage=STAGE, item=item, reason="not_fountain", detail=f"{item}: no scene heading")
    named = {c.name for shot in script.shots for c in shot.characters if not c.name.startswith("Character ")}
    upper_text = text.upper()
    missing = sorted(name for name in named if name.upper() not in upper_text)
    if missing:
        return LossRecord(stage=STAGE, item=item, reason="characters_missing",
                          detail=f"{item}: does not name {', '.join(missing)}")
    return None


def shingles(text: str, size: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + size]) for i in range(max(1, len(words) - size + 1))}


def near_duplicate_indices(texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD, seed: int = 1) -> set[int]:
    """Indices of texts that are near-copies of an earlier one (MinHash LSH over word 5-grams)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    duplicates: set[int] = set()
    for index, text in enumerate(texts):
        signature = MinHash(num_perm=128, seed=seed)
        for shingle in shingles(text):
            signature.update(shingle.encode("utf-8"))
        if lsh.query(signature):
            duplicates.add(index)
            continue
        lsh.insert(str(index), signature)
    return duplicates


def filter_restorations(script: ShootingScript, texts: list[str], reference: str) -> tuple[list[int], list[LossRecord]]:
    """Indices of the restorations to keep, and a loss for each one dropped."""
    losses: list[LossRecord] = []
    valid: list[int] = []
    for index, text in enumerate(texts):
        loss = check_restoration(script, text, len(reference))
        if loss is None:
            valid.append(index)
        else:
            losses.append(loss)
    duplicate_positions = near_duplicate_indices([texts[i] for i in valid])
    kept = [i for position, i in enumerate(valid) if position not in duplicate_positions]
    for position in sorted(duplicate_positions):
        losses.append(LossRecord(stage=STAGE, item=script.script_id, reason="near_duplicate",
                                 detail=f"{script.script_id}: restoration {valid[position]} is a near-copy of an earlier one"))
    return kept, losses
