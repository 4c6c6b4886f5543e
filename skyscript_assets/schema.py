"""Data contracts shared by stages, the catalog writers and the exports (pydantic 2)."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DramaInfo(BaseModel):
    """The optional drama.json beside the episodes. Unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    language: str | None = Field(default=None, max_length=32)
    source: str | None = None


class LossRecord(BaseModel):
    """Something a stage could not use: `reason` is a short kind, `detail` the one-line message.

    The one shape every stage reports its losses in. `transient` losses (a request that
    failed or timed out, a server that was down) are retried by the next run: an episode
    with one is not marked done."""

    stage: str
    item: str
    reason: str
    detail: str
    transient: bool = False


class FlagRecord(BaseModel):
    """A quality signal on data that was kept (a phantom object, a face-count disagreement):
    counted beside the losses, never as one."""

    stage: str
    item: str
    reason: str
    detail: str = ""


# --- Frame annotations (the multimodal LLM's pre-extraction, cleaned) ---------------------


class ShotType(StrEnum):
    """Shot size of a person or object; objects may instead be foreground or background."""

    EXTREME_CLOSE_UP = "extreme_close_up"  # eyes, hands, small objects
    CLOSE_UP = "close_up"  # a face or an object's detail
    MEDIUM = "medium"  # waist up
    FULL = "full"  # head to toe
    WIDE = "wide"  # the setting dominates
    FOREGROUND = "foreground"  # objects only: sharp, primary
    BACKGROUND = "background"  # objects only: blurred, secondary


SHOT_SIZES = frozenset({ShotType.EXTREME_CLOSE_UP, ShotType.CLOSE_UP, ShotType.MEDIUM, ShotType.FULL, ShotType.WIDE})

# Free-text spellings met in model output, normalised by `shot_type_from_text` (lowercase,
# punctuation and a trailing "shot" removed) before lookup.
_SHOT_TYPE_SYNONYMS: dict[str, ShotType] = {
    "extreme close up": ShotType.EXTREME_CLOSE_UP,
    "extreme closeup": ShotType.EXTREME_CLOSE_UP,
    "ecu": ShotType.EXTREME_CLOSE_UP,
    "xcu": ShotType.EXTREME_CLOSE_UP,
    "big close up": ShotType.EXTREME_CLOSE_UP,
    "detail": ShotType.EXTREME_CLOSE_UP,
    "insert": ShotType.EXTREME_CLOSE_UP,
    "大特写": ShotType.EXTREME_CLOSE_UP,
    "close up": ShotType.CLOSE_UP,
    "closeup": ShotType.CLOSE_UP,
    "cu": ShotType.CLOSE_UP,
    "close": ShotType.CLOSE_UP,
    "特写": ShotType.CLOSE_UP,
    "近景": ShotType.CLOSE_UP,
    "medium close up": ShotType.MEDIUM,
    "mcu": ShotType.MEDIUM,
    "medium": ShotType.MEDIUM,
    "mid": ShotType.MEDIUM,
    "ms": ShotType.MEDIUM,
    "waist": ShotType.MEDIUM,
    "中景": ShotType.MEDIUM,
    "中近景": ShotType.MEDIUM,
    "full": ShotType.FULL,
    "fs": ShotType.FULL,
    "full body": ShotType.FULL,
    "medium long": ShotType.FULL,
    "medium full": ShotType.FULL,
    "cowboy": ShotType.FULL,
    "全景": ShotType.FULL,
    "wide": ShotType.WIDE,
    "ws": ShotType.WIDE,
    "long": ShotType.WIDE,
    "ls": ShotType.WIDE,
    "extreme long": ShotType.WIDE,
    "extreme wide": ShotType.WIDE,
    "establishing": ShotType.WIDE,
    "els": ShotType.WIDE,
    "远景": ShotType.WIDE,
    "大远景": ShotType.WIDE,
    "foreground": ShotType.FOREGROUND,
    "fg": ShotType.FOREGROUND,
    "前景": ShotType.FOREGROUND,
    "background": ShotType.BACKGROUND,
    "bg": ShotType.BACKGROUND,
    "背景": ShotType.BACKGROUND,
}


def shot_type_from_text(text: str) -> ShotType | None:
    """'Medium Shot', 'medium Shot', 'CU', 'Close-up', 'Background' -> the enum; None if unknown."""
    key = re.sub(r"[^0-9a-z\u4e00-\u9fff]+", " ", text.lower()).strip()
    key = re.sub(r"\s*(shot|镜头)$", "", key).strip()
    if key in ShotType._value2member_map_:
        return ShotType(key)
    return _SHOT_TYPE_SYNONYMS.get(key) or _SHOT_TYPE_SYNONYMS.get(key.replace(" ", ""))


def _shot_type_before(value):
    if isinstance(value, str) and value not in ShotType._value2member_map_:
        return shot_type_from_text(value) or value  # unknown text stays, so validation names it
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SceneInfo(_Strict):
    number: int | None = Field(default=None, ge=0)
    name: str | None = None


class BackgroundMusic(_Strict):
    present: bool | None = None
    genre: str | None = None
    mood: str | None = None
    tempo: str | None = None


class ContinuousEmotion(_Strict):
    """Valence (unhappy -> happy), arousal (calm -> agitated), dominance (submissive -> in control), 1-9."""

    valence: float | None = Field(default=None, ge=1, le=9)
    arousal: float | None = Field(default=None, ge=1, le=9)
    dominance: float | None = Field(default=None, ge=1, le=9)


class PersonAnnotation(_Strict):
    type: str | None = None  # what the model called it: "person", "woman", ...
    age: str | None = None
    gender: str | None = None
    looks: str | None = None
    emotion: str | None = None
    actions: str | None = None
    vad: ContinuousEmotion | None = None
    temperament: str | None = None
    facial_attractiveness: float | None = Field(default=None, ge=1, le=5)
    shot_type: ShotType | None = None
    line: str | None = None  # dialogue

    @field_validator("shot_type", mode="before")
    @classmethod
    def _map_shot_type(cls, value):
        return _shot_type_before(value)

    @field_validator("shot_type")
    @classmethod
    def _people_have_sizes(cls, value):
        if value is not None and value not in SHOT_SIZES:
            raise ValueError(f"a person's shot type is a size, not {value.value}")
        return value


class ObjectAnnotation(_Strict):
    name: str | None = None
    description: str | None = None
    shot_type: ShotType | None = None

    @field_validator("shot_type", mode="before")
    @classmethod
    def _map_shot_type(cls, value):
        return _shot_type_before(value)


class FrameAnnotation(_Strict):
    """One keyframe's clean annotation. Missing optional fields are null, never guessed."""

    scene: SceneInfo | None = None
    bgm: BackgroundMusic | None = None
    scene_description: str | None = None
    people: list[PersonAnnotation] = Field(default_factory=list)
    objects: list[ObjectAnnotation] = Field(default_factory=list)
    timestamp_s: float | None = Field(default=None, ge=0)


# --- Shooting scripts (Table 1 of the paper) --------------------------------------------
# One shooting script is one scene of one episode with its shots; the dataset pairs each
# with many restored scripts. Ids (drama, episode, scene, shot) make every pair traceable.
# Every field of the paper's sample annotation reaches it (docs/scripts.md maps them), and a
# field more than one stage can supply names its source in `sources` (`line_source` for lines).


class Source(StrEnum):
    """Where a value of a shooting script came from."""

    MLLM = "mllm"  # the multimodal LLM's annotation of the keyframes
    DEEPFACE = "deepface"  # DeepFace's face attributes (its test-time-augmentation vote on a conflict)
    AUDIO = "audio"  # the episode's audio track
    SUBTITLE = "subtitle"  # a subtitle stream or .srt sidecar
    OCR = "ocr"  # text read off the keyframe
    MLLM_GUESS = "mllm_guess"  # a line the MLLM gave where nothing was read (lines only)
    MEASURED = "measured"  # measured from pixels: face and body boxes, frames, lines of the image
    DERIVED = "derived"  # computed from other fields of the script (focus, events)
    REVIEWER = "reviewer"  # a calibration reviewer's correction


class AttributeConflict(BaseModel):
    """The MLLM and DeepFace disagreed on a person's age, gender or emotion: DeepFace was re-run
    under test-time augmentation and its voted answer adopted where it still disagreed."""

    field: str  # age, gender, emotion
    mllm: str | None = None
    deepface: str | None = None  # the voted answer
    adopted: Source  # deepface (still disagreeing after the vote) or mllm (the vote agreed with it)
    tta_runs: int = 0


class Correction(BaseModel):
    """A reviewer's correction of a reviewed field, with the value it replaced (kept for audit in
    the catalog and the artifacts; `released_script` drops it from the release)."""

    field: str  # the reviewed field (calibration.REVIEW_FIELDS)
    target: str  # what it changed: "shot_size", "characters[char-1].line", ...
    original: str | None = None
    corrected: str | None = None
    reviewer: str | None = None  # Label Studio's completed_by, where the export names one
    review_file: str | None = None
    applied: bool = True  # False: the correction named nothing the shot holds (see note)
    note: str | None = None


class CharacterInShot(BaseModel):
    character_id: str  # stable across the drama ("char-3")
    name: str  # from captions / dialogue, else "Character 3"
    type: str | None = None  # what the MLLM called the person: "person", "woman", ...
    age: str | None = None  # the MLLM's word ("adult") or DeepFace's years ("34")
    gender: str | None = None  # male, female (or the MLLM's word)
    emotion: str | None = None
    vad: ContinuousEmotion | None = None
    looks: str | None = None
    action: str | None = None
    posture: str | None = None
    shot_type: ShotType | None = None  # this person's own shot size, as the MLLM framed them
    location_cm: tuple[float, float, float] | None = None  # scene frame, centimetres
    line: str | None = None
    line_source: str | None = None  # subtitle, ocr, mllm_guess, reviewer; None without a line
    # from the cleaned annotation; they feed the pairing compatibility score (stages/relationships)
    temperament: str | None = None
    facial_attractiveness: float | None = Field(default=None, ge=1, le=5)
    sources: dict[str, Source] = Field(default_factory=dict)  # age, gender, emotion, name -> where from
    conflicts: list[AttributeConflict] = Field(default_factory=list)


class ObjectInShot(BaseModel):
    name: str
    description: str | None = None
    shot_type: ShotType | None = None  # a size, or foreground / background
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in keyframe pixels
    phantom: bool = False  # named by the MLLM, not grounded by the detector


class ShotMusic(BaseModel):
    """Background music: presence and tempo in BPM measured on the audio track where it ran;
    genre, mood and the tempo word from the MLLM's BGM (also presence where no audio ran)."""

    present: bool | None = None
    genre: str | None = None
    mood: str | None = None
    tempo: str | None = None  # "Slow Tempo", ... (the MLLM's word, else from the BPM)
    tempo_bpm: float | None = None
    sources: dict[str, Source] = Field(default_factory=dict)  # present, genre, mood, tempo, tempo_bpm


class ShotScript(BaseModel):
    shot_number: int
    start_s: float
    end_s: float
    shot_size: str | None = None  # extreme_close_up, close_up, medium, full, wide
    camera_angle: str | None = None  # eye_level, high, low, overhead, dutch
    camera_movement: str | None = None  # static, pan, tilt, zoom, handheld
    focus: str | None = None  # the main subject
    action: str | None = None
    highlight_score: float | None = None
    characters: list[CharacterInShot] = Field(default_factory=list)
    objects: list[ObjectInShot] = Field(default_factory=list)
    music: ShotMusic | None = None
    event_number: int | None = None
    event: str | None = None
    # 3x4: scene point (cm, homogeneous) -> homogeneous pixel of the shot's keyframe; None with nobody placed
    projection_matrix: list[list[float]] | None = None
    layout_registered: bool | None = None  # False: shares no character with the scene's earlier shots
    # shot_size (mllm/measured), camera_angle, camera_movement, focus, action, event, highlight_score
    # (mllm: from the VAD; audio: loudness and cut pace; measured: cut pace alone) -> where from
    sources: dict[str, Source] = Field(default_factory=dict)
    corrections: list[Correction] = Field(default_factory=list)  # the reviewers', with the values replaced

    @property
    def duration_s(self) -> float:
        return round(self.end_s - self.start_s, 3)


class ShootingScript(BaseModel):
    drama_id: str
    episode_id: str
    scene_number: int
    interior: bool | None = None  # INT. / EXT.; None when unknown
    location: str
    time_of_day: str | None = None  # DAY, NIGHT, ...
    description: str | None = None
    shots: list[ShotScript] = Field(default_factory=list)

    @property
    def heading(self) -> str:
        place = {True: "INT.", False: "EXT.", None: "INT./EXT."}[self.interior]
        time = f" - {self.time_of_day.upper()}" if self.time_of_day else ""
        return f"{place} {self.location.upper()}{time}"

    @property
    def script_id(self) -> str:
        return f"{self.drama_id}/{self.episode_id}/scene-{self.scene_number:04d}"


def released_script(script: dict) -> dict:
    """A stored shooting script (`ShootingScript` as JSON) as it is released: the reviewers'
    corrections stay in, with `reviewer` as their source, but the audit trail of the values
    they replaced does not leave the catalog."""
    return {
        **script,
        "shots": [{k: v for k, v in shot.items() if k != "corrections"} for shot in script.get("shots") or []],
    }
