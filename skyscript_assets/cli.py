"""`skyscript`: the command line of the SkyScript factory.

    skyscript demo            render a sample drama, run every asset on it, print a summary
    skyscript ingest PATH     register a drama folder (copied into the landing zone)
    skyscript db upgrade      migrate the catalog database
    skyscript ui              open the Dagster UI on the same instance
    skyscript annotate IMG..  run an MLLM backend on images, print its raw output
    skyscript clean-json FILE clean one raw MLLM output into validated annotations
    skyscript export DRAMA    write a released drama out as parquet, jsonl or fountain files
    skyscript models pull     download the configured models' weights (network) with a manifest
    skyscript models check    load every configured model and give it one tiny input (no network)

Errors a user can fix are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from skyscript_assets import settings


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "home", None):
        os.environ["SKYSCRIPT_HOME"] = str(Path(args.home).expanduser().resolve())
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"skyscript: {_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skyscript: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line (and no secret) instead of a traceback
        if args.debug:
            import traceback

            print(_without_secrets("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
        hint = "" if args.debug else " (--debug for the traceback)"
        print(f"skyscript: {_error_line(exc)}{hint}", file=sys.stderr)
        return 1


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line too (sub-command parsers inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="skyscript",
        description="SkyScript factory: short-drama videos in, shooting scripts and scripts out. "
        "State lives under SKYSCRIPT_HOME (default ~/.skyscript): catalog.db, landing/, artifacts/, dagster/.",
    )
    parser.add_argument("--home", help="use this SKYSCRIPT_HOME instead of the environment's")
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback as well")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="render a sample drama and materialize every asset on it")
    demo.add_argument("--drama-id", default=None, help="partition key of the sample drama (default sample-drama)")
    demo.set_defaults(func=cmd_demo)

    ingest = sub.add_parser(
        "ingest", help="register a drama folder: copy it into the landing zone and add its partition"
    )
    ingest.add_argument("path", help="folder holding the episode videos (and an optional drama.json)")
    ingest.add_argument("--drama-id", help="partition key (default: the folder name; must be a lowercase slug)")
    ingest.add_argument("--run", action="store_true", help="materialize every asset of the drama now, in-process")
    ingest.set_defaults(func=cmd_ingest)

    db = sub.add_parser("db", help="catalog database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_sub.add_parser(
        "upgrade", help="apply the Alembic migrations (SKYSCRIPT_DATABASE_URL or the SQLite default)"
    )
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(func=cmd_db_upgrade)

    shots = sub.add_parser("shots", help="shots and keyframes of one video (no catalog, no Dagster)")
    shots.add_argument("video", help="a video file")
    shots.add_argument("--out", help="folder for the keyframe JPEGs (default $SKYSCRIPT_HOME/shots/<video name>)")
    shots.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    shots.add_argument("--seconds-per-keyframe", type=float, default=4.0)
    shots.add_argument(
        "--decode-threads",
        type=int,
        default=0,
        help="decoders working on segments of whole GOPs at once (default: one per core, at most 4)",
    )
    shots.add_argument(
        "--learned-shots",
        choices=("auto", "on", "off"),
        default="auto",
        help="TransNetV2 as a second opinion on changes too small for a cut: auto (where CUDA is), "
        "on (on the CPU too: ~1 s of CPU per change it is asked about), off",
    )
    shots.set_defaults(func=cmd_shots)

    ui = sub.add_parser("ui", help="run `dagster dev` on this SKYSCRIPT_HOME's instance")
    ui.add_argument("--port", default="3000")
    ui.set_defaults(func=cmd_ui)

    annotate = sub.add_parser(
        "annotate", help="send images (one shot, in order) to an MLLM backend; print the raw output"
    )
    annotate.add_argument("images", nargs="+", help="image files (JPEG, PNG or WebP)")
    annotate.add_argument("--backend", default="baseline", help="baseline (default), openai, transformers or lmdeploy")
    annotate.add_argument(
        "--server", help="openai: base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:23333/v1"
    )
    annotate.add_argument("--model", help="openai: the served model's name")
    annotate.add_argument("--model-path", help="transformers / lmdeploy: local model folder")
    annotate.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the API key"
    )
    annotate.set_defaults(func=cmd_annotate)

    clean = sub.add_parser(
        "clean-json", help="clean one raw MLLM output (a frame, a list of frames or a Case_N mapping)"
    )
    clean.add_argument("file", nargs="?", default="-", help="file with the raw output, or - for standard input")
    clean.add_argument(
        "--repair-server", help="OpenAI-compatible server for the LLM repair of what local repair cannot read"
    )
    clean.add_argument("--repair-model", help="the repair model's name (with --repair-server)")
    clean.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the repair server's API key"
    )
    clean.set_defaults(func=cmd_clean_json)

    export = sub.add_parser(
        "export",
        help="write a released drama out: parquet (shards, card, relationships), "
        "jsonl (one pair per line) or fountain (one screenplay file per restoration)",
    )
    export.add_argument("drama", help="the drama id (partition key)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="parquet")
    export.add_argument("--out", required=True, help="folder to write into (created if missing; refused if not empty)")
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (or a link standing there, never its target)",
    )
    export.set_defaults(func=cmd_export)

    models = sub.add_parser("models", help="model weights: pull them into a weights folder, check that they load")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="MODELS_COMMAND")
    pull = models_sub.add_parser(
        "pull",
        help="download models from the Hugging Face Hub (needs network) into a "
        "weights folder, with a manifest of commits, sizes and sha256 "
        "(skyscript-models.json)",
    )
    pull.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="mllm restoration detector depth pose deepface (default: all six) or mllm-76b",
    )
    pull.add_argument("--dest", help="weights folder (default $SKYSCRIPT_WEIGHTS_DIR, else $SKYSCRIPT_HOME/models)")
    pull.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="MODEL=OWNER/NAME[@REVISION]",
        help="another repository or revision for a model (repeatable)",
    )
    pull.add_argument(
        "--dry-run", action="store_true", help="resolve revisions, list files and sizes, download nothing"
    )
    pull.set_defaults(func=cmd_models_pull)
    check = models_sub.add_parser(
        "check",
        help="load every configured model on a device and give it one tiny input (no network); one line per model",
    )
    check.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="mllm restoration detector depth pose faces face-embedder ocr (default: all)",
    )
    check.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    check.add_argument("--weights", help="a pulled weights folder: its models fill in what the profile leaves unset")
    check.set_defaults(func=cmd_models_check)
    return parser


def cmd_models_pull(args) -> int:
    from skyscript_assets.models.provision import PullError, pull_command

    try:
        return pull_command(args.models, dest=args.dest, repos=args.repo, dry_run=args.dry_run)
    except PullError as exc:
        raise UserError(str(exc)) from None


def cmd_models_check(args) -> int:
    from skyscript_assets.defs.platform.profiles import profile_resources
    from skyscript_assets.models.provision import PullError, check_command

    try:
        return check_command(args.models, device=args.device, weights=args.weights, resources=profile_resources())
    except (PullError, ValueError) as exc:
        raise UserError(str(exc)) from None


EXPORT_FORMATS = ("parquet", "jsonl", "fountain")  # as stages.release.export.EXPORT_FORMATS (imported lazily)


def cmd_export(args) -> int:
    count, what = export_release(args.drama, args.format, Path(args.out).expanduser(), overwrite=args.overwrite)
    out = Path(args.out).expanduser().absolute()
    print(f"exported {count} {what} of drama {args.drama!r} as {args.format} to {out}")
    return 0


def export_release(drama_id: str, fmt: str, out: Path, *, overwrite: bool = False) -> tuple[int, str]:
    """Write the released drama `drama_id` into `out` (stages/release/export.py); (count, what was counted)."""
    from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource
    from skyscript_assets.stages.release.export import ExportError
    from skyscript_assets.stages.release.export import export_release as export

    catalog = CatalogResource().get()
    try:
        done = export(
            catalog,
            ArtifactsResource().get(),
            drama_id,
            fmt,
            out,
            overwrite=overwrite,
            catalog_label=f"the catalog at {_redact(catalog.url)}",
        )
    except ExportError as exc:
        raise UserError(str(exc)) from None
    return done.count, done.what


def cmd_annotate(args) -> int:
    from skyscript_assets.models.mllm import BackendUnavailable, MllmRequest, load_backend
    from skyscript_assets.prompts import frame_annotation_prompt

    images = []
    for name in args.images:
        try:
            images.append(Path(name).read_bytes())
        except OSError as exc:
            raise UserError(f"{name}: {exc.strerror or exc}") from None
    config = {}
    if args.backend == "openai":
        if not (args.server and args.model):
            raise UserError("--backend openai needs --server URL and --model NAME")
        config = {"base_url": args.server, "model": args.model, "api_key_env": args.api_key_env}
    elif args.backend in ("transformers", "lmdeploy"):
        if not args.model_path:
            raise UserError(f"--backend {args.backend} needs --model-path FOLDER")
        config = {"model_path": args.model_path}
    try:
        backend = load_backend(args.backend, **config)
    except (BackendUnavailable, ValueError) as exc:
        raise UserError(str(exc)) from None
    try:
        [reply] = backend.generate([MllmRequest(tuple(images), frame_annotation_prompt(len(images)))])
    finally:
        backend.close()
    if reply.text is None:
        print(f"skyscript: {backend.model_id}: {reply.error}", file=sys.stderr)
        return 1
    print(reply.text)
    return 0


def cmd_clean_json(args) -> int:
    import json

    from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{args.file}: {exc.strerror or exc}") from None
    repairer = None
    if args.repair_server:
        if not args.repair_model:
            raise UserError("--repair-server needs --repair-model NAME")
        from skyscript_assets.models.llm import LlmJsonRepairer

        repairer = LlmJsonRepairer.from_server(args.repair_server, args.repair_model, api_key_env=args.api_key_env)
    result = clean_raw_output(text, repairer=repairer)
    for loss in result.losses:
        print(f"skyscript: {loss.item}: {loss.reason}: {loss.detail}", file=sys.stderr)
    if result.outcome is CleanOutcome.LOST:
        return 1
    # one frame in, one object out; a list or a Case_N mapping in, a list out
    frames = [frame.model_dump(mode="json") for frame in result.frames]
    print(json.dumps(frames[0] if result.single_frame else frames, ensure_ascii=False, indent=2))
    return 0


def cmd_db_upgrade(args) -> int:
    from skyscript_assets.catalog import upgrade

    url = settings.database_url()
    upgrade(url, args.revision)
    print(f"catalog at {_redact(url)} upgraded to {args.revision}")
    return 0


def cmd_ingest(args) -> int:
    from skyscript_assets.ids import UnsafeIdError, validate_drama_id
    from skyscript_assets.stages.ingest.landing import LandingRefusal, copy_into_landing

    source = Path(args.path).expanduser()
    if not source.is_dir():
        raise UserError(f"{args.path}: not a folder")
    drama_id = args.drama_id or source.resolve().name
    try:
        validate_drama_id(drama_id)
    except UnsafeIdError as exc:
        raise UserError(f"{exc}; rename the folder or pass --drama-id") from None

    try:  # links are followed (their targets copied); sub-folders, broken links and FIFOs are not copied
        target, skipped = copy_into_landing(source, settings.landing_url(), drama_id)
    except LandingRefusal as exc:
        raise UserError(str(exc)) from None
    for note in skipped:
        print(f"skyscript: not copied: {note}", file=sys.stderr)
    instance = _instance()
    from skyscript_assets.defs.platform.runner import register_drama

    added = register_drama(instance, drama_id)
    print(f"drama {drama_id!r} {'registered' if added else 'already registered'}; landing folder {target}")
    if args.run:
        return _run_drama(drama_id, instance)
    print(f"materialize it with: skyscript ingest {args.path} --run   (or from the Dagster UI: skyscript ui)")
    return 0


def cmd_demo(args) -> int:
    from skyscript_assets.demo.flow import run_demo

    return run_demo(args.drama_id)


def cmd_shots(args) -> int:
    import json

    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.stages.video.keyframes import EpisodeJob, KeyframeSettings, decode_threads, process_episode

    video = Path(args.video).expanduser()
    if not video.is_file():
        raise UserError(f"{args.video}: no such file")
    out = Path(args.out).expanduser() if args.out else settings.skyscript_home() / "shots" / video.stem
    if args.decode_threads < 0:
        raise UserError(f"--decode-threads {args.decode_threads}: must be 0 (one per core) or more")
    shot_settings = KeyframeSettings(
        seconds_per_keyframe=args.seconds_per_keyframe,
        decode_threads=args.decode_threads,
        learned_shots=getattr(args, "learned_shots", "auto"),
    )
    job = EpisodeJob(video.stem, str(video), str(out), shot_settings)
    try:
        outcome = process_episode(job)
    except WeightsMissing as exc:
        raise UserError(f"--learned-shots on: {exc}") from None
    if outcome.losses:
        raise UserError(f"{args.video}: {outcome.losses[0].reason}: {outcome.losses[0].detail}")
    r = outcome.results[0]
    report = {
        "video": str(video),
        "duration_s": r.duration_s,
        "fps": r.fps,
        "width": r.width,
        "height": r.height,
        "seconds": round(r.seconds, 3),
        "decode_threads": decode_threads(args.decode_threads),
        "learned_shots": r.learned_shots,
        "judged": r.judged,
        "rescued": r.rescued,
        "shots": [
            {
                "index": s.index,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "start_frame": s.start_frame,
                "end_frame": s.end_frame,
                "transition_in": s.transition_in,
            }
            for s in r.shots
        ],
        "keyframes": [
            {
                "shot_index": k.shot_index,
                "time_s": k.time_s,
                "frame": k.frame,
                "valid": k.valid,
                "invalid_reason": k.invalid_reason,
                "path": k.path,
                "width": k.width,
                "height": k.height,
            }
            for k in r.keyframes
        ],
    }
    if args.video in sys.argv[1:]:
        # This command is the process's own: it ends next. Spare the interpreter's exit a
        # collector pass over the ~135k objects numba and the stage leave (~0.2 s of wall).
        import gc

        gc.freeze()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(
        f"{video}: {r.duration_s:.2f} s, {r.fps:g} fps, {r.width}x{r.height}, {len(r.shots)} shots, "
        f"{len(r.keyframes)} keyframes ({sum(not k.valid for k in r.keyframes)} invalid), "
        f"{r.duration_s / max(r.seconds, 1e-9):.1f}x realtime on {decode_threads(args.decode_threads)} decoder "
        f"threads; learned second opinion: {r.learned_shots}"
        + (f", {r.judged} asked, {r.rescued} cuts" if r.judged else "")
    )
    for shot in r.shots:
        print(
            f"  shot {shot.index:3d}  {shot.start_s:8.3f} - {shot.end_s:8.3f} s  "
            f"frames {shot.start_frame}-{shot.end_frame}  {shot.transition_in}"
        )
    print(f"keyframes in {out}")
    return 0


def cmd_ui(args) -> int:
    home = settings.ensure_dagster_home()
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "skyscript_assets.definitions", "-p", str(args.port)]
    print(f"DAGSTER_HOME={home}; starting: {' '.join(cmd)}")
    os.execv(sys.executable, cmd)


def _instance():
    from skyscript_assets.demo.flow import local_instance

    return local_instance()


def _run_drama(drama_id: str, instance) -> int:
    from skyscript_assets.catalog import queries
    from skyscript_assets.definitions import DRAMA_ASSETS, REPORT_ASSETS
    from skyscript_assets.defs.platform.resources import CatalogResource
    from skyscript_assets.defs.platform.runner import run_drama, summary_lines
    from skyscript_assets.defs.release.dataset import dataset_lines

    outcomes = run_drama(drama_id, instance, DRAMA_ASSETS, REPORT_ASSETS)
    print("\n".join(summary_lines(drama_id, outcomes, queries.losses(CatalogResource().get(), drama_id))))
    print("\n".join(dataset_lines(outcomes)))
    print("\nOpen the Dagster UI on these runs:")
    print(
        f"  DAGSTER_HOME={settings.dagster_home()} dagster dev -m skyscript_assets.definitions    (or: skyscript ui)"
    )
    return 0 if all(o.ok for o in outcomes) else 1


def _secrets() -> dict[str, str]:
    """Secret -> what to print instead: the database URL and its password, keys and tokens in the environment."""
    from sqlalchemy.engine import make_url

    found: dict[str, str] = {}
    url = settings.database_url()
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - an unparseable URL is hidden whole
        password = None
    found[url] = _redact(url)
    if password and len(str(password)) >= 4:
        found[str(password)] = "***"
    for name, value in os.environ.items():
        if value and len(value) >= 8 and any(w in name.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")):
            found[value] = f"${name}"
    return found


def _without_secrets(text: str) -> str:
    for secret, shown in sorted(_secrets().items(), key=lambda item: len(item[0]), reverse=True):
        text = text.replace(secret, shown)
    return text


def _error_line(exc: BaseException) -> str:
    """One line for any error: what failed, why, and nothing secret (see models.redact)."""
    from sqlalchemy.exc import SQLAlchemyError

    from skyscript_assets.models.redact import redact

    if isinstance(exc, UserError):
        text = str(exc)
    elif isinstance(exc, SQLAlchemyError):  # the URL itself is replaced by its redacted form below
        cause = getattr(exc, "orig", None) or exc
        why = str(cause).strip().split("\n")[0]
        text = f"catalog database {settings.database_url()}: {why or type(cause).__name__}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact(_without_secrets(text), limit=400)


def _redact(url: str) -> str:
    """Never print a database password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


if __name__ == "__main__":
    sys.exit(main())
