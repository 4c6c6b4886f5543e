"""Script restoration: many screenplays per shooting script, filtered and deduplicated.

    variants = style_variants(n, seed)                  # diverse style controls
    prompt = restoration_prompt(script, style, draft)   # the whole shooting script, for an LLM (n samples)
    kept, losses = filter_restorations(script, texts)   # parse, names, length, near-duplicates
    rows, losses = restore_script(script, generator, plan)  # all of it, for one shooting script
    restored = restore_drama(scripts, generator, plan, fs, folder)  # a drama, streamed into shards

The LLM restores from the shooting script itself, as the paper does (its Table 1): the prompt
carries the Table 1 text, the structured fields (highlight score, 3D locations, VAD, events,
objects, music, dialogue lines with their source: `structured_fields`) and the faithful Fountain
rendering as a draft of the form. The generation goes through a text backend
(models/text_generation: an OpenAI-compatible server with `n` samples per request, lmdeploy or
transformers); each row says how it was decoded (`greedy`, `sampled`, or `rendered` for the
offline default, where `render_fountain` gives one faithful restoration per shooting script).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import fsspec

from skyscript_assets.models.text_generation import GenerationFailed, TextGenerator, decodings, derived_seed
from skyscript_assets.schema import LossRecord, ShootingScript
from skyscript_assets.stages.release.fountain import read_fountain, render_fountain
from skyscript_assets.stages.release.shards import RESTORATION_SCHEMA, ShardInfo, write_shards
from skyscript_assets.stages.scripts.table1 import shooting_script_text

STAGE = "restored_scripts"
# 2: the prompt carries the whole shooting script (Table 1 text and structured fields), rows say
#    how each restoration was decoded (greedy with n > 1 is one greedy and n - 1 sampled)
STAGE_VERSION = "2"
RENDERED = "rendered"  # the decoding of the offline, deterministic restorations
RENDERER_ID = "fountain-renderer/1"  # the model id of the offline, deterministic restorations
GENRES = ["drama", "romance", "thriller", "comedy", "mystery", "family"]
TONES = ["restrained", "tense", "warm", "playful", "melancholic", "urgent"]
LENGTHS = {
    "short": (0.6, "keep it brief"),
    "medium": (1.0, "keep the original length"),
    "long": (1.6, "add texture and beats"),
}
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

    def label(self) -> str:
        """The form stored with each restoration: `genre=... tone=... length=... language=...`."""
        return f"genre={self.genre} tone={self.tone} length={self.length} language={self.language}"


def style_variants(n: int, seed: int, language: str = "en") -> list[RestorationStyle]:
    """`n` style controls, cycling through every combination before repeating (seeded)."""
    combos = [RestorationStyle(g, t, length, language) for g in GENRES for t in TONES for length in LENGTHS]
    random.Random(seed).shuffle(combos)
    return [combos[i % len(combos)] for i in range(n)]


# Audit trails and geometry a screenwriter has no use for: left out of the structured fields.
NOT_FOR_RESTORATION = frozenset(
    {"projection_matrix", "layout_registered", "corrections", "conflicts", "sources", "box", "character_id"}
)


def structured_fields(script: ShootingScript) -> dict:
    """The shooting script's fields as the restoration LLM reads them: the scene, and per shot
    its time, size, camera, focus, action, highlight score, event, music, characters (age,
    gender, emotion, VAD, 3D location in cm, posture, looks, action, shot type, line and
    `line_source`) and objects (description, shot type, `phantom` when not grounded). Empty
    values, audit trails (corrections, conflicts, per-field sources) and geometry are left out."""
    data = script.model_dump(mode="json", exclude_none=True)
    data = {
        "scene": {
            "number": script.scene_number,
            "heading": script.heading,
            **({"description": script.description} if script.description else {}),
        },
        "shots": data.get("shots", []),
    }
    return _compact(data)


def _compact(value):
    if isinstance(value, dict):
        return {
            k: _compact(v)
            for k, v in value.items()
            if k not in NOT_FOR_RESTORATION and v not in (None, [], {}) and not (k == "phantom" and v is False)
        }
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if isinstance(value, float):
        return round(value, 2)
    return value


def restoration_prompt(script: ShootingScript, style: RestorationStyle, reference: str) -> str:
    """The request for restorations of `script`: the whole shooting script (its Table 1 text and
    structured fields) and `reference`, the faithful Fountain rendering, as a draft of the form.
    The style comes last: every request for one shooting script then shares the long prefix
    (instructions and the shooting script), which lmdeploy's prefix cache computes once."""
    fields = json.dumps(structured_fields(script), ensure_ascii=False, separators=(",", ":"))
    return (
        "You are a screenwriter. Restore the screenplay scene that the shooting script below records, in "
        "Fountain format: the scene heading first, then action paragraphs, then each spoken line under its "
        "speaker's name in capitals. Work from the whole shooting script: the highlight scores (0-1) say where "
        "the scene peaks, the 3D locations (centimetres, in the scene) where people stand and how they move, "
        "the VAD (valence, arousal, dominance, 1-9) how they feel, the events, objects and background music "
        "what happens and what is seen and heard. Keep every character and every spoken line (a line whose "
        "line_source is mllm_guess was not read from the video and may be reworded); you may rephrase action "
        "and add beats. Answer with the screenplay only.\n\n"
        f"Shooting script (Table 1):\n{shooting_script_text(script).strip()}\n\n"
        f"Structured fields (JSON):\n{fields}\n\n"
        f"Faithful rendering (Fountain draft):\n{reference}\n\n"
        f"Style of this version: {style.describe()}."
    )


def check_restoration(script: ShootingScript, text: str, reference_length: int) -> LossRecord | None:
    """None when `text` is a usable restoration of `script`, else the loss with its reason."""
    item = script.script_id
    if not text or not text.strip():
        return LossRecord(stage=STAGE, item=item, reason="empty", detail=f"{item}: empty restoration")
    ratio = len(text) / max(1, reference_length)
    if not MIN_LENGTH_RATIO <= ratio <= MAX_LENGTH_RATIO:
        return LossRecord(
            stage=STAGE,
            item=item,
            reason="length_out_of_bounds",
            detail=f"{item}: {len(text)} characters, {ratio:.2f}x the faithful rendering",
        )
    try:
        document = read_fountain(text)
    except Exception as exc:  # noqa: BLE001 - an unparseable text is a loss, whatever the parser raised
        return LossRecord(
            stage=STAGE,
            item=item,
            reason="not_fountain",
            detail=f"{item}: Fountain parser failed ({type(exc).__name__})",
        )
    if not document.headings:
        return LossRecord(stage=STAGE, item=item, reason="not_fountain", detail=f"{item}: no scene heading")
    named = {c.name for shot in script.shots for c in shot.characters if not c.name.startswith("Character ")}
    upper_text = text.upper()
    missing = sorted(name for name in named if name.upper() not in upper_text)
    if missing:
        return LossRecord(
            stage=STAGE, item=item, reason="characters_missing", detail=f"{item}: does not name {', '.join(missing)}"
        )
    return None


def shingles(text: str, size: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


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


def filter_restorations(
    script: ShootingScript, texts: list[str], reference: str
) -> tuple[list[int], list[LossRecord]]:
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
        losses.append(
            LossRecord(
                stage=STAGE,
                item=script.script_id,
                reason="near_duplicate",
                detail=f"{script.script_id}: restoration {valid[position]} is a near-copy of an earlier one",
            )
        )
    return kept, losses


FAITHFUL_STYLE = "faithful"


@dataclass(frozen=True)
class RestorationPlan:
    """How many restorations per shooting script and how they are asked for."""

    restorations: int = 100  # N per shooting script (the paper: 100)
    # Samples sharing one prompt, hence one style. 0 (the default): all N in one request per
    # shooting script, styles varied across scripts; a smaller group varies them within a script
    # too, at the price of N / group requests.
    samples_per_request: int = 0

    @property
    def per_request(self) -> int:
        return (
            min(self.samples_per_request, self.restorations)
            if self.samples_per_request > 0
            else max(1, self.restorations)
        )

    seed: int = 0
    language: str = "en"
    temperature: float = 0.9
    max_tokens: int = 1024


@dataclass(frozen=True)
class RestorationRequest:
    prompt: str
    style: RestorationStyle
    n: int
    seed: int
    first_index: int  # restoration index of its first sample


def restoration_requests(script: ShootingScript, reference: str, plan: RestorationPlan) -> list[RestorationRequest]:
    """The requests for one shooting script: N samples in groups of `samples_per_request`, one
    style per group, styles and seeds derived from (plan seed, script id): the same plan asks
    the same requests on every run, and neighbouring scripts get different styles."""
    per_request = plan.per_request
    count = math.ceil(plan.restorations / per_request)
    styles = style_variants(count, derived_seed(plan.seed, script.script_id, "styles"), plan.language)
    requests = []
    for number, style in enumerate(styles):
        first = number * per_request
        requests.append(
            RestorationRequest(
                prompt=restoration_prompt(script, style, reference),
                style=style,
                n=min(per_request, plan.restorations - first),
                seed=derived_seed(plan.seed, script.script_id, number),
                first_index=first,
            )
        )
    return requests


def restore_script(
    script: ShootingScript, generator: TextGenerator, plan: RestorationPlan
) -> tuple[list[dict], list[LossRecord]]:
    """Restoration rows (`RESTORATION_SCHEMA`) of one shooting script from an LLM, filtered and
    deduplicated; a request that fails, or samples a server did not return, are losses."""
    reference = render_fountain(script)
    texts: list[str] = []
    origin: list[tuple[int, RestorationRequest, str]] = []  # (restoration index, its request, decoding) per text
    losses: list[LossRecord] = []
    for request in restoration_requests(script, reference, plan):
        try:
            samples = generator.generate(
                request.prompt,
                n=request.n,
                seed=request.seed,
                temperature=plan.temperature,
                max_tokens=plan.max_tokens,
            )[: request.n]
            problem = f"the server returned {len(samples)} of {request.n} samples"
        except GenerationFailed as exc:
            samples, problem = [], str(exc)
        decoded = decodings(request.n, plan.temperature)  # how the generator decoded each sample, in order
        for offset in range(request.n):
            index = request.first_index + offset
            if offset < len(samples):
                texts.append(samples[offset])
                origin.append((index, request, decoded[offset]))
            else:
                losses.append(
                    LossRecord(
                        stage=STAGE,
                        item=f"{script.script_id}/r{index:03d}",
                        reason="llm_failed",
                        detail=f"{script.script_id}: restoration {index}: {problem}",
                    )
                )
    kept, dropped = filter_restorations(script, texts, reference)
    rows = [
        {
            "script_id": script.script_id,
            "restoration_index": origin[i][0],
            "style": origin[i][1].style.label(),
            "script": texts[i],
            "model_id": generator.model_id,
            "seed": origin[i][1].seed,
            "decoding": origin[i][2],
        }
        for i in kept
    ]
    return rows, losses + dropped


def faithful_restoration(script: ShootingScript, model_id: str) -> tuple[list[dict], list[LossRecord]]:
    """The offline default: the deterministic rendering, filtered like any restoration."""
    reference = render_fountain(script)
    kept, losses = filter_restorations(script, [reference], reference)
    return [
        {
            "script_id": script.script_id,
            "restoration_index": 0,
            "style": FAITHFUL_STYLE,
            "script": reference,
            "model_id": model_id,
            "seed": None,
            "decoding": RENDERED,
        }
        for _ in kept
    ], losses


def load_generator(load: Callable[[], TextGenerator]) -> tuple[TextGenerator | None, str]:
    """(the text generator, its model id), or (None, why it does not run here): a server that
    cannot be reached or weights that are absent mean "not run", never an error."""
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.mllm import BackendUnavailable

    try:
        generator = load()
    except (BackendUnavailable, WeightsMissing) as exc:
        return None, str(exc) if isinstance(
            exc, WeightsMissing
        ) else f"not run: {exc}"  # WeightsMissing says "not run"
    return generator, generator.model_id


@dataclass
class DramaRestorations:
    """A drama's restorations as written: the shards, and a loss for each one dropped."""

    shards: list[ShardInfo]
    losses: list[LossRecord] = field(default_factory=list)
    model_id: str = RENDERER_ID
    per_script: int = 1  # restorations asked per shooting script
    requests: int = 0  # requests to the LLM (0 offline)
    stage_version: str = STAGE_VERSION

    @property
    def kept(self) -> int:
        return sum(s.rows for s in self.shards)


def restore_drama(
    scripts: list[ShootingScript],
    generator: TextGenerator | None,
    plan: RestorationPlan,
    fs: fsspec.AbstractFileSystem,
    folder: str,
    *,
    rows_per_shard: int,
) -> DramaRestorations:
    """Every shooting script of a drama restored (by `generator`, or the faithful renderer when
    None) and streamed into Parquet shards (`RESTORATION_SCHEMA`) in `folder`, which is replaced:
    a drama's N x scripts restorations never sit in memory at once. The caller closes `generator`."""
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    losses: list[LossRecord] = []
    with ThreadPoolExecutor(max_workers=generator.max_concurrency if generator else 1) as pool:
        if generator:
            results: Iterator = pool.map(lambda script: restore_script(script, generator, plan), scripts)
        else:
            results = map(lambda script: faithful_restoration(script, RENDERER_ID), scripts)

        def restorations() -> Iterator[dict]:
            for kept, dropped in results:
                losses.extend(dropped)
                yield from kept

        shards = write_shards(restorations(), fs, folder, schema=RESTORATION_SCHEMA, rows_per_shard=rows_per_shard)
    if generator is None:
        return DramaRestorations(shards, losses)
    return DramaRestorations(
        shards,
        losses,
        generator.model_id,
        plan.restorations,
        len(scripts) * math.ceil(plan.restorations / plan.per_request),
    )
