"""A drama's shooting scripts, character library and calibration packets, from every earlier stage.

    evidence = DramaEvidence(drama_id, episodes, keyframes, reviews)
    drama = assemble_drama(evidence, artifact_root="s3://bucket/artifacts")
    for parts, content in drama.files(): ...          # what to store under the asset's folder

The one entry point of `calibrated_shooting_scripts`, plain Python. It reads the keyframe
images and episode videos itself (`storage.local_file`: local or object-store URIs alike),
clusters the drama's faces into characters (DeepFace's ArcFace where its weights are, the
HOG fallback otherwise), assembles each episode's scenes (`shooting_scripts.assemble_episode`),
renders their Table 1 text, and samples the shots into calibration packets graded against
the reviewers' exports. The reviewers' corrections are then applied to the shooting scripts
(`reviewer` as their source, the replaced values kept in each shot's `corrections`), the
events and focus derived from corrected fields are derived again, and the Table 1 text is
rendered from the corrected script. A keyframe that cannot be read is a loss; a measure that
cannot run on an episode (camera movement, music) is listed in `not_run` with its reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby

import av
import numpy as np

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.mllm import decode_rgb
from skyscript_assets.schema import Correction, LossRecord, ShootingScript
from skyscript_assets.stages.scripts.audio import analyse_range, decode_mono
from skyscript_assets.stages.scripts.calibration import (
    Packet,
    PacketGrade,
    RecordReview,
    correct_script,
    grade_packet,
    label_config,
    label_studio_task,
    load_reviews,
    make_packets,
    shot_fields,
)
from skyscript_assets.stages.scripts.highlight import plot_highlight_curve
from skyscript_assets.stages.scripts.shooting_scripts import (
    DramaIdentities,
    KeyframeEvidence,
    LibraryEntry,
    ShotEvidence,
    assemble_episode,
    character_library,
    identities_for_drama,
    sample_shot_frames,
    scene_view_png,
)
from skyscript_assets.stages.scripts.table1 import shooting_script_text
from skyscript_assets.storage import local_file, open_fs, read_bytes

STAGE_VERSION = "3"  # 2: camera angle, events, reconciled shot size, registered layout; 3: every field of the
# paper's annotation with its source, DeepFace only on conflict, sampled packets, reviewers' corrections applied
STAGE = "calibrated_shooting_scripts"  # the stage name of its loss records
# Reviewers' Label Studio exports (or the short {record_id: true|false} form), in the drama's
# landing folder: this file and/or any *.json under calibration/.
REVIEWS_FILE = "calibration_reviews.json"
REVIEWS_FOLDER = "calibration"
CURVE_FIGURES = 5  # episodes whose highlight curve is drawn


# --- what the stage is given ------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeVideo:
    episode_id: str
    position: int  # 0-based order in the drama
    uri: str  # local path or object-store URI of the video
    has_audio: bool
    shots: list[tuple[int, float, float]]  # (shot index, start s, end s), in time order


@dataclass(frozen=True)
class AnnotatedKeyframe:
    """A valid keyframe with its cleaned annotation and what the refinements found in it."""

    item: str  # "<episode>/kf0001"
    episode_id: str
    shot_index: int
    time_s: float
    uri: str
    annotation: dict  # schema.FrameAnnotation as JSON
    people: list[dict] = field(default_factory=list)  # refined people, in person order
    objects: list[dict] = field(default_factory=list)  # grounded objects


@dataclass(frozen=True)
class ReviewFile:
    path: str
    data: bytes


@dataclass
class DramaEvidence:
    drama_id: str
    episodes: list[EpisodeVideo]  # in drama order
    keyframes: list[AnnotatedKeyframe]  # in episode then keyframe order
    reviews: list[ReviewFile] = field(default_factory=list)  # later files override earlier ones


def read_review_files(landing_url: str, drama_id: str) -> list[ReviewFile]:
    """The drama's review exports in the landing zone (local folder or object store), in override order."""
    fs, root = open_fs(landing_url)
    folder = f"{root}/{drama_id}"
    paths = [f"{folder}/{REVIEWS_FILE}", *sorted(fs.glob(f"{folder}/{REVIEWS_FOLDER}/*.json"))]
    return [ReviewFile(path, fs.cat_file(path)) for path in paths if fs.exists(path)]


# --- what it makes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneScript:
    episode_id: str
    script: ShootingScript
    text: str  # Table 1 form

    def parts(self, suffix: str) -> tuple[str, str]:
        return self.episode_id, f"scene-{self.script.scene_number:04d}.{suffix}"


@dataclass(frozen=True)
class NotRun:
    """A measure that could not run on an episode, and why."""

    episode_id: str
    measure: str  # camera_movement, music
    reason: str


@dataclass(frozen=True)
class CalibrationRecord:
    """One reviewable record (a shot): its episode, fields, keyframe and the scene's text."""

    episode_id: str
    fields: dict[str, str | None]
    keyframe_uri: str | None
    context: str


@dataclass
class Calibration:
    packets: list[Packet]
    grades: list[PacketGrade]
    tasks: dict[str, list[dict]]  # packet id -> its Label Studio tasks
    status: str  # pending, passed, needs_repair
    episodes_to_repair: list[str]
    review_files: int = 0
    unreadable_reviews: list[str] = field(default_factory=list)  # paths of review files that could not be parsed
    records: int = 0  # shots of the drama (the packets hold a sample of them)
    corrections: list[tuple[str, Correction]] = field(default_factory=list)  # (record id, correction) applied
    episode_accuracy: dict[str, float] = field(default_factory=dict)  # over each episode's reviewed records

    @property
    def corrections_applied(self) -> int:
        return sum(1 for _, c in self.corrections if c.applied)

    @property
    def accuracy(self) -> float | None:
        """The worst packet's accuracy, once every packet is graded."""
        if self.grades and all(g.accuracy is not None for g in self.grades):
            return min(g.accuracy for g in self.grades)
        return None


@dataclass
class DramaScripts:
    drama_id: str
    scenes: list[SceneScript]
    library: list[LibraryEntry]  # with first_episode_id
    embedding_kind: str  # deepface or hog
    embeddings_note: str | None  # why DeepFace did not embed the faces
    identity_of: dict[tuple[str, int], tuple[str, str]]
    calibration: Calibration
    curves: dict[str, list[float]]  # episode id -> highlight score per shot
    curve_figures: dict[str, bytes]  # PNGs of the first episodes' curves
    virtual_view: bytes | None  # PNG of the first scene with characters placed in 3D
    figures: Counter  # what was measured and what disagreed
    not_run: list[NotRun] = field(default_factory=list)
    losses: dict[str, list[LossRecord]] = field(default_factory=dict)  # episode id -> its losses
    stage_version: str = STAGE_VERSION

    @property
    def loss_records(self) -> list[LossRecord]:
        return [record for records in self.losses.values() for record in records]

    @property
    def characters(self) -> int:
        return len({character_id for character_id, _ in self.identity_of.values()})

    @property
    def character_names(self) -> list[str]:
        return sorted({name for _, name in self.identity_of.values()})

    @staticmethod
    def face_parts(entry: LibraryEntry) -> tuple[str, str]:
        return "characters", f"{entry.character_id}.jpg"

    def files(self) -> Iterator[tuple[tuple[str, ...], bytes | dict | list]]:
        """Everything to store under the asset's folder: (path parts, bytes or a JSON value)."""
        for scene in self.scenes:
            yield scene.parts("json"), scene.script.model_dump(mode="json")
            yield scene.parts("txt"), scene.text.encode()
        for entry in self.library:
            yield self.face_parts(entry), entry.face_jpeg
        calibration = self.calibration
        for packet_id, tasks in calibration.tasks.items():
            yield ("calibration", f"{packet_id}.tasks.json"), tasks
        yield ("calibration", "label_config.xml"), label_config().encode()
        yield (
            ("calibration", "packets.json"),
            {
                "packets": [
                    {"packet_id": p.packet_id, "record_ids": p.record_ids, "status": g.status, "accuracy": g.accuracy}
                    for p, g in zip(calibration.packets, calibration.grades)
                ],
                "grades": [asdict(g) for g in calibration.grades],
                "records": calibration.records,
                "sampled": sum(len(p.record_ids) for p in calibration.packets),
                "episode_accuracy": calibration.episode_accuracy,
                "episodes_to_repair": calibration.episodes_to_repair,
                "reviews": f"<landing>/{self.drama_id}/{REVIEWS_FILE} or "
                f"<landing>/{self.drama_id}/{REVIEWS_FOLDER}/*.json",
            },
        )
        # the audit trail: every correction with the value it replaced (the release drops the latter)
        yield (
            ("calibration", "corrections.json"),
            [{"record_id": record_id, **c.model_dump(mode="json")} for record_id, c in calibration.corrections],
        )


# --- the stage --------------------------------------------------------------------------------


def assemble_drama(
    evidence: DramaEvidence,
    *,
    artifact_root: str = "",
    deepface_home: str | None = None,
    embedder=None,
    asset_key: str = "calibrated_shooting_scripts",
) -> DramaScripts:
    """The drama's shooting scripts, characters and calibration state.

    `artifact_root` is where the keyframes live (Label Studio's local-files route under it);
    `embedder` (models.faces.FaceEmbedder) is loaded from `deepface_home` when not given;
    the Label Studio tasks carry `<asset_key>/<STAGE_VERSION>` as their model version."""
    images, losses = _keyframe_images(evidence.keyframes)
    note = None
    if embedder is None:
        embedder, note = load_face_embedder(deepface_home)
    identities = identities_for_drama(_faces(evidence, images), embedder)
    episode_of = {k.item: k.episode_id for k in evidence.keyframes}
    library = [
        replace(entry, first_episode_id=episode_of[entry.first_item]) for entry in character_library(identities)
    ]
    scenes, curves, records, figures, not_run = _episodes(evidence, images, identities)
    calibration, reviews = _calibrate(evidence, records, artifact_root, f"{asset_key}/{STAGE_VERSION}")
    scenes, calibration.corrections = _corrected(scenes, reviews)
    view = next((png for png in (scene_view_png(s.script) for s in scenes) if png), None)
    return DramaScripts(
        drama_id=evidence.drama_id,
        scenes=scenes,
        library=library,
        embedding_kind=identities.embedding_kind,
        embeddings_note=note,
        identity_of=identities.identity_of,
        calibration=calibration,
        curves=curves,
        curve_figures={e: plot_highlight_curve(s) for e, s in list(curves.items())[:CURVE_FIGURES]},
        virtual_view=view,
        figures=figures,
        not_run=not_run,
        losses=losses,
    )


def load_face_embedder(deepface_home: str | None):
    """DeepFace's ArcFace where its weights are; (None, why) otherwise, and the HOG fallback is used."""
    from skyscript_assets.models.faces import FaceEmbedder

    try:
        return FaceEmbedder.load(deepface_home or None), None
    except WeightsMissing as exc:
        return None, str(exc)


def _keyframe_images(keyframes: list[AnnotatedKeyframe]) -> tuple[dict[str, np.ndarray], dict[str, list[LossRecord]]]:
    images, losses = {}, defaultdict(list)
    for keyframe in keyframes:
        try:
            images[keyframe.item] = np.asarray(decode_rgb(read_bytes(keyframe.uri)))
        except (OSError, ValueError) as exc:
            losses[keyframe.episode_id].append(
                LossRecord(
                    stage=STAGE,
                    item=keyframe.item,
                    reason="unreadable_keyframe",
                    detail=f"{keyframe.uri}: {exc}"[:500],
                )
            )
    return images, dict(losses)


def _faces(evidence: DramaEvidence, images: dict[str, np.ndarray]) -> list[tuple]:
    """Face observations for `identities_for_drama`, in keyframe order."""
    position = {e.episode_id: e.position for e in evidence.episodes}
    return [
        (
            k.item,
            i,
            images[k.item],
            tuple(p["face_box"]),
            p.get("line"),
            (position.get(k.episode_id, 0), k.time_s),
            p.get("caption"),
        )
        for k in evidence.keyframes
        if k.item in images
        for i, p in enumerate(k.people)
        if p.get("face_box")
    ]


def _episodes(evidence: DramaEvidence, images: dict[str, np.ndarray], identities: DramaIdentities):
    """Scenes, highlight curves, calibration records, figures and not-run measures of every episode."""
    by_shot: dict[tuple[str, int], list[KeyframeEvidence]] = defaultdict(list)
    uri_of = {}
    for k in evidence.keyframes:
        if k.item in images:
            by_shot[(k.episode_id, k.shot_index)].append(
                KeyframeEvidence(k.item, images[k.item], k.annotation, k.people, k.objects)
            )
            uri_of[k.item] = k.uri
    scenes, curves, records, figures, not_run = [], {}, {}, Counter(), []
    for episode in evidence.episodes:
        if not episode.shots:
            continue
        frames, audio, skipped = _video_signals(episode)
        not_run += skipped
        shots = [
            ShotEvidence(
                index,
                start,
                end,
                by_shot.get((episode.episode_id, index), []),
                frames.get(index, []),
                audio=analyse_range(audio, start, end) if audio is not None else None,
            )
            for index, start, end in episode.shots
        ]
        scripts = assemble_episode(evidence.drama_id, episode.episode_id, shots, identities.identity_of, figures)
        first_keyframe = {round(s.start_s, 3): uri_of.get(s.keyframes[0].item) for s in shots if s.keyframes}
        for script in scripts:
            scene = SceneScript(episode.episode_id, script, shooting_script_text(script))
            scenes.append(scene)
            for shot in script.shots:
                records[f"{script.script_id}/shot-{shot.shot_number:03d}"] = CalibrationRecord(
                    episode.episode_id, shot_fields(shot), first_keyframe.get(round(shot.start_s, 3)), scene.text
                )
        curves[episode.episode_id] = [shot.highlight_score or 0.0 for script in scripts for shot in script.shots]
    return scenes, curves, records, figures, not_run


def _video_signals(episode: EpisodeVideo) -> tuple[dict[int, list[np.ndarray]], np.ndarray | None, list[NotRun]]:
    """Grey frames per shot (camera movement) and the mono audio (music, loudness) of an episode,
    from a local copy of its video; what cannot be measured is returned as not run, with why."""
    frames, audio, not_run = {}, None, []
    try:
        with local_file(episode.uri) as path:
            frames, why = _decoded(sample_shot_frames, str(path), episode.shots)
            if why:
                not_run.append(NotRun(episode.episode_id, "camera_movement", f"video not decodable: {why}"))
            if episode.has_audio:
                audio, why = _decoded(decode_mono, str(path))
                if why or audio is None:
                    why = f"audio not decodable: {why}" if why else "no audio stream in the video"
                    not_run.append(NotRun(episode.episode_id, "music", why))
            else:
                not_run.append(NotRun(episode.episode_id, "music", "the episode has no audio track"))
    except OSError as exc:  # the video could not be fetched
        why = f"video not readable: {exc}"
        return {}, None, [NotRun(episode.episode_id, "camera_movement", why), NotRun(episode.episode_id, "music", why)]
    return frames or {}, audio, not_run


def _decoded(decode, *args):
    """(decode(*args), None), or (None, why) when the media cannot be decoded."""
    try:
        return decode(*args), None
    except (OSError, ValueError, av.error.FFmpegError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


def _calibrate(
    evidence: DramaEvidence, records: dict[str, CalibrationRecord], artifact_root: str, model_version: str
) -> tuple[Calibration, dict[str, RecordReview]]:
    """Seeded packets sampled from the drama's shots across its episodes, their Label Studio
    tasks, their grades from the reviews, and the reviews of the drama's records."""
    strata = {r: record.episode_id for r, record in records.items()}
    packets = make_packets(list(records), drama_id=evidence.drama_id, strata=strata)
    reviews, unreadable = _reviews(evidence.reviews, {r: record.fields for r, record in records.items()})
    reviews = {r: review for r, review in reviews.items() if r in records}
    grades = [grade_packet(p, reviews) for p in packets]
    status = (
        "passed"
        if grades and all(g.status == "passed" for g in grades)
        else "needs_repair"
        if any(g.status == "needs_repair" for g in grades)
        else "pending"
    )
    to_repair = sorted(
        {records[r].episode_id for p, g in zip(packets, grades) if g.status == "needs_repair" for r in p.record_ids}
    )
    tasks = {
        p.packet_id: [
            label_studio_task(
                r,
                image_url(artifact_root, records[r].keyframe_uri),
                records[r].fields,
                records[r].context,
                model_version,
            )
            for r in p.record_ids
        ]
        for p in packets
    }
    accuracy = {}
    for episode, reviewed in groupby(
        sorted(((strata[r], review) for r, review in reviews.items()), key=lambda x: x[0]), key=lambda x: x[0]
    ):
        reviewed = [review for _, review in reviewed]
        checked = sum(r.fields_checked for r in reviewed)
        accuracy[episode] = round(1 - sum(r.fields_changed for r in reviewed) / checked, 4) if checked else 0.0
    calibration = Calibration(
        packets,
        grades,
        tasks,
        status,
        to_repair,
        len(evidence.reviews),
        unreadable,
        records=len(records),
        episode_accuracy=accuracy,
    )
    return calibration, reviews


def _corrected(
    scenes: list[SceneScript], reviews: dict[str, RecordReview]
) -> tuple[list[SceneScript], list[tuple[str, Correction]]]:
    """The scenes with the reviewers' corrections applied, what they derive from corrected
    fields (events, focus) derived again, and their Table 1 text rendered anew."""
    corrected, made = [], []
    for scene in scenes:
        applied = correct_script(scene.script, reviews)
        if applied:
            scene = SceneScript(scene.episode_id, scene.script, shooting_script_text(scene.script))
        corrected.append(scene)
        made += applied
    return corrected, made


def _reviews(files: list[ReviewFile], predictions: dict) -> tuple[dict[str, RecordReview], list[str]]:
    """Every review file of the drama, later files overriding earlier ones record by record; the
    paths of those that could not be parsed (they count as not reviewed yet)."""
    reviews: dict[str, RecordReview] = {}
    unreadable = []
    for review in files:
        try:
            loaded = load_reviews(review.data.decode("utf-8"), predictions)
        except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError):
            unreadable.append(review.path)
            continue
        reviews.update({r: replace(v, review_file=review.path.rsplit("/", 1)[-1]) for r, v in loaded.items()})
    return reviews, unreadable


def image_url(artifact_root: str, uri: str | None) -> str | None:
    """Where Label Studio finds the keyframe: its local-files route under the artifact root
    (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT = the artifact root), or the object-store URI."""
    if not uri:
        return None
    root = artifact_root.rstrip("/")
    if root and "://" not in root and uri.startswith(root + "/"):
        return f"/data/local-files/?d={uri[len(root) + 1 :]}"
    return uri
