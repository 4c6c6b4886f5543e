"""Data contracts shared by stages, the catalog writers and the exports (pydantic 2)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DramaInfo(BaseModel):
    """The optional drama.json beside the episodes. Unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    language: str | None = Field(default=None, max_length=32)
    source: str | None = None


class LossRecord(BaseModel):
    """Something a stage could not use: `reason` is a short kind, `detail` the one-line message."""

    stage: str
    item: str
    reason: str
    detail: str


# --- Shooting scripts (Table 1 of the paper) --------------------------------------------
# One shooting script is one scene of one episode with its shots; the dataset pairs each
# with many restored scripts. Ids (drama, episode, scene, shot) make every pair traceable.


class EmotionVAD(BaseModel):
    """Continuous emotion on the paper's 1-9 scales."""

    valence: float | None = Field(default=None, ge=1, le=9)
    arousal: float | None = Field(default=None, ge=1, le=9)
    dominance: float | None = Field(default=None, ge=1, le=9)


class CharacterInShot(BaseModel):
    character_id: str  # stable across the drama ("char-3")
    name: str  # from captions / dialogue, else "Character 3"
    emotion: str | None = None
    vad: EmotionVAD | None = None
    looks: str | None = None
    action: str | None = None
    posture: str | None = None
    location_cm: tuple[float, float, float] | None = None  # scene frame, centimetres
    line: str | None = None


class ObjectInShot(BaseModel):
    name: str
    description: str | None = None
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in keyframe pixels
    phantom: bool = False  # named by the MLLM, not grounded by the detector


class ShotMusic(BaseModel):
    present: bool
    genre: str | None = None
    mood: str | None = None
    tempo_bpm: float | None = None


class ShotScript(BaseModel):
    shot_number: int
    start_s: float
    end_s: float
    shot_size: str | None = None  # extreme_close_up, close_up, medium, full, wide
    camera_angle: str | None = None  # eye_level, high, low, ...
    camera_movement: str | None = None  # static, pan, tilt, zoom, handheld
    focus: str | None = None  # the main subject
    action: str | None = None
    highlight_score: float | None = None
    characters: list[CharacterInShot] = Field(default_factory=list)
    objects: list[ObjectInShot] = Field(default_factory=list)
    music: ShotMusic | None = None
    event_number: int | None = None
    event: str | None = None

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
