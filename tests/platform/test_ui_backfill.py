"""The operator's day in the Dagster UI, on a real instance: `dagster-webserver` and
`dagster-daemon` on a Postgres-backed DAGSTER_HOME, the repository's workspace.yaml.

* Backfills as the UI launches them: three dramas registered with the UI's "add partition"
  mutation, a backfill of `drama_pipeline` launched with the very `launchPartitionBackfill`
  mutation of the UI's backfill dialog, then the backfill page's "re-execute from failure"
  (`reexecutePartitionBackfill`) once the broken drama is mended.
* A real browser (Debian's Chromium driven by Playwright) on that UI: asset graph, the
  partitions of `keyframes`, the failed loss-rate check, the backfill page.
* Scheduled materialization: a drama folder appears in the landing zone; the daemon's
  `new_dramas` sensor adds the partition and its run completes.

One webserver and one daemon serve every test of this module (a module-scoped fixture).
Screenshots go to docs/screenshots/ with UPDATE_SCREENSHOTS=1, to the test's tmp folder otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import skimage.data

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "SKYSCRIPT_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"

LOCATION = "skyscript"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # the repository a `dg.Definitions` becomes
JOB = "drama_pipeline"
REPO_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

# good: one clean episode; lossy: a clean episode and a corrupt file (its file-loss-rate check
# fails, the run goes on); broken: only a corrupt file (the blocking has_episodes check fails the run)
GOOD, LOSSY, BROKEN = "good-drama", "lossy-drama", "broken-drama"
DRAMAS = (GOOD, LOSSY, BROKEN)
FRESH = "fresh-drama"  # appears in the landing zone while the daemon runs
# The backfill dialog's "config" editor: one keyframes worker and every step in the run's own
# process (two shared cores here; the sensor's run keeps the job's defaults).
RUN_CONFIG_YAML = """\
execution:
  config:
    in_process: {}
ops:
  keyframes:
    config:
      workers: 1
"""
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
STARTUP_TIMEOUT_S = 240
RUN_TIMEOUT_S = 420


# --- GraphQL: the webserver's own endpoint, with the UI's documents --------------------------------

# The UI's mutations, copied from dagster-webserver 1.13's bundle (ui-core/src/...): the backfill
# dialog (LaunchAssetChoosePartitionsDialog / BackfillSelector), the backfill page's re-execute
# menu (useReexecuteBackfill) and the partition picker's "Add partition" (CreatePartitionDialog).
LAUNCH_PARTITION_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on RunConfigValidationInvalid { pipelineName errors { message path reason } }
    ... on PythonError { message stack }
  }
}"""

REEXECUTE_BACKFILL = """
mutation reexecuteBackfill($reexecutionParams: ReexecutionParams!) {
  reexecutePartitionBackfill(reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}"""

ADD_DYNAMIC_PARTITION = """
mutation AddDynamicPartition($partitionsDefName: String!, $partitionKey: String!,
                             $repositorySelector: RepositorySelector!) {
  addDynamicPartition(partitionsDefName: $partitionsDefName, partitionKey: $partitionKey,
                      repositorySelector: $repositorySelector) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionsDefName partitionKey }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on DuplicateDynamicPartitionError { partitionsDefName partitionName }
  }
}"""

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message stack } } } }
  }
}"""

DAEMONS = """
query Daemons { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""

JOB_ASSETS = """
query JobAssets($pipeline: PipelineSelector!) { assetNodes(pipeline: $pipeline) { assetKey { path } } }"""

BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status partitionNames fromFailure partitionSetName
                               error { message } }
    ... on PythonError { message }
  }
}"""

RUNS = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status jobName parentRunId rootRunId tags { key value } } }
    ... on PythonError { message }
  }
}"""

CHECK_EXECUTIONS = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!, $partition: String) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partition, limit: 10) {
    runId status partition evaluation { success severity description }
  }
}"""

SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { name sensorState { status ticks(limit: 20) { status runIds skipReason
                                                                 error { message } } } }
  }
}"""


class GraphQL:
    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def __call__(self, query: str, **variables) -> dict:
        response = self.session.post(self.url, json={"query": query, "variables": variables}, timeout=120)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


# --- the running instance -------------------------------------------------------------------------


@dataclass
class Platform:
    """A webserver and a daemon on one Postgres-backed instance, and the paths they use."""

    root: Path
    skyscript_home: Path
    dagster_home: Path
    catalog_url: str
    env: dict[str, str]
    ui_url: str = ""
    graphql: GraphQL | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    backfill: dict = field(default_factory=dict)  # what the backfill test launched, for the browser test

    @property
    def landing(self) -> Path:
        return self.skyscript_home / "landing"

    def log_tail(self, name: str, chars: int = 6000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def runs(self, **tags: str) -> list[dict]:
        filter_ = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        data = self.graphql(RUNS, filter=filter_)["runsOrError"]
        assert data["__typename"] == "Runs", data
        for run in data["results"]:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return data["results"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _databases(*purposes: str):
    """Fresh databases on the local PostgreSQL server (like conftest's `postgres_url`, for a whole module)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    names = [f"skyscript_ui_{purpose}_{uuid.uuid4().hex[:10]}" for purpose in purposes]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required under CI: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not reachable: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield [f"{base}/{name}" for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _dagster_yaml(storage_url: str) -> str:
    plain_url = storage_url.replace("postgresql+psycopg2://", "postgresql://")
    return f"""\
storage:
  postgres:
    postgres_url: "{plain_url}"
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 3
code_servers:
  local_startup_timeout: {STARTUP_TIMEOUT_S}
telemetry:
  enabled: false
"""


def _start(platform: Platform, name: str, args: list[str]) -> subprocess.Popen:
    log = open(platform.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env=platform.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    platform.processes[name] = process
    return process


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group this fixture started (the server, its code server and runs)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left (a run's subprocess)


def wait_for(what: str, probe, timeout_s: float, platform: Platform | None = None, every_s: float = 2.0):
    """Call `probe` until it returns something truthy; fail with the servers' logs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if platform is not None:
            for name, process in platform.processes.items():
                if process.poll() is not None:
                    log = platform.log_tail(name)
                    pytest.fail(f"{name} exited ({process.returncode}) while waiting for {what}:\n{log}")
        try:
            last = probe()
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every_s)
    names = platform.processes if platform else {}
    logs = "\n".join(f"--- {name}.log\n{platform.log_tail(name, 3000)}" for name in names)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}\n{logs}")


def _location_loaded(platform: Platform) -> bool:
    data = platform.graphql(WORKSPACE)["workspaceOrError"]
    entries = {e["name"]: e for e in data.get("locationEntries", [])}
    entry = entries.get(LOCATION)
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"code location failed to load: {location}"
    return True


def _daemons_healthy(platform: Platform) -> list[str]:
    statuses = platform.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    required = [s for s in statuses if s["required"]]
    return [s["daemonType"] for s in required] if required and all(s["healthy"] for s in required) else []


def render_drama(folder: Path, *, good_episodes: int = 1, corrupt_files: int = 0, first: int = 1) -> None:
    """A tiny drama: short clean episodes (two shots, one subtitled) and optionally corrupt files."""
    from skyscript_assets.demo.synthetic import ShotSpec, render_video

    pictures = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.chelsea()]
    for n in range(first, first + good_episodes):
        render_video(
            folder / f"ep{n}.mp4",
            [
                ShotSpec(pictures[n % 4], 0.75, subtitle="Where were you last night?"),
                ShotSpec(pictures[(n + 1) % 4], 0.75, "static", "cut"),
            ],
            size=(160, 96),
        )
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first + good_episodes, first + good_episodes + corrupt_files):
        # a truncated download: an mp4 name, no video inside
        (folder / f"ep{n}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))


def _sensor(platform: Platform) -> dict:
    selector = {"sensorName": "new_dramas", **REPO_SELECTOR}
    sensor = platform.graphql(SENSOR, selector=selector)["sensorOrError"]
    assert sensor["__typename"] == "Sensor", sensor
    return sensor["sensorState"]


def _finished_ticks(platform: Platform) -> list[dict]:
    """The sensor's evaluated ticks, newest first."""
    return [t for t in _sensor(platform)["ticks"] if t["status"] != "STARTED"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Platform:
    """Webserver + daemon on a fresh Postgres instance, the three backfill dramas registered.

    Once the sensor has ticked (and skipped: three known dramas), FRESH appears in the landing
    zone, so its sensor-launched run overlaps the backfill instead of adding minutes at the end."""
    root = tmp_path_factory.mktemp("ui_platform")
    with _databases("dagster", "catalog") as (storage_url, catalog_url):
        dagster_home = root / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(_dagster_yaml(storage_url))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"SKYSCRIPT_ARTIFACTS_URL", "SKYSCRIPT_LANDING_URL", "SKYSCRIPT_PROFILE"}
        }
        env.update(
            SKYSCRIPT_HOME=str(root / "skyscript_home"),
            DAGSTER_HOME=str(dagster_home),
            SKYSCRIPT_DATABASE_URL=catalog_url,
            PYTHONUNBUFFERED="1",
        )
        platform = Platform(
            root=root,
            skyscript_home=root / "skyscript_home",
            dagster_home=dagster_home,
            catalog_url=catalog_url,
            env=env,
        )
        for drama_id, good, corrupt in ((GOOD, 1, 0), (LOSSY, 1, 1), (BROKEN, 0, 1)):
            render_drama(platform.landing / drama_id, good_episodes=good, corrupt_files=corrupt)
        render_drama(root / "incoming" / FRESH, good_episodes=1)  # moved into the landing zone later
        # the operator's first step on a new catalog database (the runs would race to migrate it)
        subprocess.run(
            [str(BIN / "skyscript"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120
        )

        workspace = REPO_ROOT / "workspace.yaml"  # the one `dagster dev` and `skyscript ui` use
        port = _free_port()
        platform.ui_url = f"http://127.0.0.1:{port}"
        platform.graphql = GraphQL(platform.ui_url + "/graphql")
        try:
            _start(
                platform,
                "webserver",
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
            )
            wait_for("the webserver's code location", lambda: _location_loaded(platform), STARTUP_TIMEOUT_S, platform)
            # Registered before the daemon starts: the sensor must not launch runs for these.
            for drama_id in DRAMAS:
                added = platform.graphql(
                    ADD_DYNAMIC_PARTITION,
                    partitionsDefName="dramas",
                    partitionKey=drama_id,
                    repositorySelector=REPO_SELECTOR,
                )["addDynamicPartition"]
                assert added["__typename"] == "AddDynamicPartitionSuccess", added
            _start(platform, "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
            wait_for("healthy daemons", lambda: _daemons_healthy(platform), STARTUP_TIMEOUT_S, platform)
            first_tick = wait_for(
                "the sensor's first tick", lambda: _finished_ticks(platform), STARTUP_TIMEOUT_S, platform
            )[-1]
            assert first_tick["status"] == "SKIPPED" and "3 known" in first_tick["skipReason"], first_tick
            os.rename(root / "incoming" / FRESH, platform.landing / FRESH)  # the scraper's upload completes
            yield platform
        finally:
            for name in ("daemon", "webserver"):
                if name in platform.processes:
                    _stop(platform.processes[name])
            from skyscript_assets.defs.platform import resources

            if catalog_url in resources._catalogs:
                resources._catalogs.pop(catalog_url).engine.dispose()


# --- backfills ------------------------------------------------------------------------------------


def launch_backfill_as_the_ui(platform: Platform, partitions: list[str]) -> str:
    """The job page's "Materialize all…" → partitions dialog → "Launch backfill" (a job target)."""
    assets = platform.graphql(JOB_ASSETS, pipeline={"pipelineName": JOB, **REPO_SELECTOR})["assetNodes"]
    result = platform.graphql(
        LAUNCH_PARTITION_BACKFILL,
        backfillParams={
            "tags": [{"key": "dagster/from_ui", "value": "true"}],
            "assetSelection": [a["assetKey"] for a in assets],
            "partitionNames": partitions,
            "fromFailure": False,
            "runConfigData": RUN_CONFIG_YAML,
            "selector": {"partitionSetName": f"{JOB}_partition_set", "repositorySelector": REPO_SELECTOR},
        },
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def wait_for_runs(platform: Platform, what: str, expected_runs: int, backfill_id: str | None = None, **tags):
    """Until `expected_runs` runs with these tags (and the backfill's, when given) exist and have finished."""
    if backfill_id:
        tags["dagster/backfill"] = backfill_id

    def done():
        if backfill_id:
            backfill = platform.graphql(BACKFILL, backfillId=backfill_id)["partitionBackfillOrError"]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            assert backfill["status"] not in {"FAILED", "CANCELED", "CANCELING"}, backfill
            if backfill["status"] == "REQUESTED":  # the daemon has not submitted every run yet
                return None
        runs = platform.runs(**tags)
        if len(runs) >= expected_runs and all(r["status"] in TERMINAL_RUN_STATUSES for r in runs):
            return runs
        return None

    return wait_for(what, done, RUN_TIMEOUT_S, platform, every_s=3)


def _by_partition(runs: list[dict]) -> dict[str, dict]:
    by_partition = {}
    for run in runs:
        partition = run["tags"]["dagster/partition"]
        assert partition not in by_partition, f"two runs for {partition}"
        by_partition[partition] = run
    return by_partition


def _materialized_run(instance, asset: str, partition: str) -> str | None:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return records[0].run_id if records else None


def _check_status(platform: Platform, check: str, run_id: str, asset: str = "drama_manifest") -> str:
    """A check's outcome in one run, as the asset's Checks tab lists its executions. (The product's
    checks are not partitioned, so an execution names its run, not its drama.)"""
    executions = platform.graphql(CHECK_EXECUTIONS, assetKey={"path": [asset]}, checkName=check, partition=None)[
        "assetCheckExecutions"
    ]
    [status] = [e["status"] for e in executions if e["runId"] == run_id] or [None]
    return status


def _catalog_counts(platform: Platform, drama_id: str) -> dict[str, object]:
    from sqlalchemy import func, select

    from skyscript_assets.catalog import Catalog, Drama, Episode, Loss, ReleaseShard, ShootingScriptRow

    catalog = Catalog(platform.catalog_url, migrate=False)
    try:
        with catalog.session() as session:

            def count(table, **equal):
                stmt = select(func.count()).select_from(table).where(table.partition == drama_id)
                for column, value in equal.items():
                    stmt = stmt.where(getattr(table, column) == value)
                return session.scalar(stmt)

            drama = session.scalar(select(Drama).where(Drama.drama_id == drama_id))
            return {
                "drama_run": drama.run_id if drama else None,
                "episodes": count(Episode),
                "shooting_scripts": count(ShootingScriptRow),
                "release_shards": count(ReleaseShard),
                "manifest_losses": count(Loss, stage="drama_manifest"),
                "episode_runs": set(session.scalars(select(Episode.run_id).where(Episode.partition == drama_id))),
            }
    finally:
        catalog.engine.dispose()


@pytest.fixture(scope="module")
def backfilled(platform: Platform) -> dict:
    """The backfill over the three dramas, launched once for the module: its id and runs."""
    if "id" not in platform.backfill:
        backfill_id = launch_backfill_as_the_ui(platform, list(DRAMAS))
        runs = wait_for_runs(platform, f"backfill {backfill_id}", len(DRAMAS), backfill_id)
        platform.backfill.update(id=backfill_id, runs=_by_partition(runs))
    return platform.backfill


@pytest.fixture(scope="module")
def reexecuted(platform: Platform, backfilled: dict) -> dict:
    """The operator mends the broken drama (a readable episode arrives beside the corrupt file),
    then uses the backfill page's "Re-execute" → "From failure"."""
    if "retry_id" not in platform.backfill:
        render_drama(platform.root / "incoming" / BROKEN, good_episodes=1, first=2)
        os.rename(platform.root / "incoming" / BROKEN / "ep2.mp4", platform.landing / BROKEN / "ep2.mp4")
        result = platform.graphql(
            REEXECUTE_BACKFILL, reexecutionParams={"parentRunId": backfilled["id"], "strategy": "FROM_FAILURE"}
        )["reexecutePartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        retry_id = result["backfillId"]
        retried = wait_for_runs(platform, f"re-executed backfill {retry_id}", 1, retry_id)
        platform.backfill.update(retry_id=retry_id, retried=retried)
    return platform.backfill


def test_backfill_launched_as_the_ui_does(platform: Platform, backfilled: dict):
    runs = backfilled["runs"]
    # One run per partition, each of the job, with the dialog's tags and config.
    assert set(runs) == set(DRAMAS)
    assert all(r["jobName"] == JOB and r["tags"]["dagster/from_ui"] == "true" for r in runs.values())
    # The broken drama failed its own run only.
    assert {p: r["status"] for p, r in runs.items()} == {GOOD: "SUCCESS", LOSSY: "SUCCESS", BROKEN: "FAILURE"}
    backfill = platform.graphql(BACKFILL, backfillId=backfilled["id"])["partitionBackfillOrError"]
    assert backfill["status"] == "COMPLETED_FAILED" and sorted(backfill["partitionNames"]) == sorted(DRAMAS)

    drama_assets = [
        a["assetKey"]["path"][0]
        for a in platform.graphql(JOB_ASSETS, pipeline={"pipelineName": JOB, **REPO_SELECTOR})["assetNodes"]
    ]
    assert {"drama_manifest", "keyframes", "raw_mllm_json", "script_pairs"} <= set(drama_assets)
    instance = platform.instance()
    try:
        # Materializations per partition: every asset of the two good dramas, by their own run; the
        # broken drama stops at its manifest (the blocking check), nothing downstream ran.
        for drama_id in (GOOD, LOSSY):
            assert {a: _materialized_run(instance, a, drama_id) for a in drama_assets} == {
                a: runs[drama_id]["runId"] for a in drama_assets
            }
        assert _materialized_run(instance, "drama_manifest", BROKEN) == runs[BROKEN]["runId"]
        assert [a for a in drama_assets if _materialized_run(instance, a, BROKEN)] == ["drama_manifest"]
        run_config = instance.get_run_by_id(runs[GOOD]["runId"]).run_config
        assert run_config["ops"]["keyframes"]["config"]["workers"] == 1
    finally:
        instance.dispose()

    # Asset-check results of each run.
    assert _check_status(platform, "has_episodes", runs[GOOD]["runId"]) == "SUCCEEDED"
    assert _check_status(platform, "file_loss_rate", runs[GOOD]["runId"]) == "SUCCEEDED"
    assert _check_status(platform, "file_loss_rate", runs[LOSSY]["runId"]) == "FAILED"  # warns, does not block
    assert _check_status(platform, "has_episodes", runs[BROKEN]["runId"]) == "FAILED"  # blocks
    assert _check_status(platform, "file_loss_rate", runs[BROKEN]["runId"]) == "FAILED"
    assert _check_status(platform, "invalid_keyframe_rate", runs[GOOD]["runId"], "keyframes") is not None

    # The catalog, on Postgres: each drama's rows written by its own run.
    good, lossy, broken = (_catalog_counts(platform, d) for d in DRAMAS)
    assert good["drama_run"] == runs[GOOD]["runId"] and good["episode_runs"] == {runs[GOOD]["runId"]}
    assert (good["episodes"], good["manifest_losses"]) == (1, 0)
    assert good["shooting_scripts"] >= 1 and good["release_shards"] >= 1
    assert lossy["drama_run"] == runs[LOSSY]["runId"]
    assert (lossy["episodes"], lossy["manifest_losses"]) == (1, 1) and lossy["release_shards"] >= 1
    assert broken["drama_run"] == runs[BROKEN]["runId"]
    assert (broken["episodes"], broken["manifest_losses"], broken["shooting_scripts"], broken["release_shards"]) == (
        0,
        1,
        0,
        0,
    )


def test_reexecuting_from_failure_reruns_only_the_failed_drama(platform: Platform, reexecuted: dict):
    runs, retried = reexecuted["runs"], reexecuted["retried"]
    # Only the failed partition ran again, as a re-execution of its failed run, and now succeeded.
    assert [r["tags"]["dagster/partition"] for r in retried] == [BROKEN]
    [rerun] = retried
    assert rerun["parentRunId"] == runs[BROKEN]["runId"] and rerun["status"] == "SUCCESS"
    assert rerun["tags"]["dagster/parent_backfill_id"] == reexecuted["id"]
    for drama_id in (GOOD, LOSSY):
        assert [r["runId"] for r in platform.runs(**{"dagster/partition": drama_id})] == [runs[drama_id]["runId"]]

    instance = platform.instance()
    try:
        assert _materialized_run(instance, "script_pairs", BROKEN) == rerun["runId"]
        assert _materialized_run(instance, "script_pairs", GOOD) == runs[GOOD]["runId"]  # untouched
    finally:
        instance.dispose()
    assert _check_status(platform, "has_episodes", rerun["runId"]) == "SUCCEEDED"
    assert _check_status(platform, "file_loss_rate", rerun["runId"]) == "FAILED"  # the corrupt file is still there
    broken = _catalog_counts(platform, BROKEN)
    assert (broken["episodes"], broken["manifest_losses"]) == (1, 1) and broken["release_shards"] >= 1
    assert broken["drama_run"] == rerun["runId"] and broken["episode_runs"] == {rerun["runId"]}


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium for Playwright (checked before the module's instance starts)."""
    path = next((p for p in (shutil.which("chromium"), *CHROMIUM_CANDIDATES) if p and Path(p).exists()), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs Debian's chromium (apt-get install chromium) and playwright (the dev extra)")
        pytest.skip("no Chromium (apt-get install chromium) or no playwright")
    return path


def _seen(expect, page):
    def seen(text: str) -> None:
        expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=90_000)

    return seen


def test_the_ui_in_a_real_browser(chromium: str, platform: Platform, reexecuted: dict, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    out = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    platform.graphql("mutation SetNuxSeen { setNuxSeen }")  # the first-visit "join the community" dialog's Skip
    rerun = reexecuted["retried"][0]["runId"]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        try:
            # 1. The asset graph, wide: every group expanded (⌥E), navigation and explorer folded away
            #    (a page of its own: the folded navigation is remembered by the browser).
            page = browser.new_page(viewport={"width": 2200, "height": 560})
            page.set_default_timeout(90_000)
            seen = _seen(expect, page)
            page.goto(f"{platform.ui_url}/asset-groups")
            seen("Global asset lineage")
            page.get_by_text("Hide navigation").click()
            page.locator("button:has([aria-label='panel_show_right'])").click()
            seen("ingest")
            page.keyboard.press("Alt+e")
            for asset in (
                "drama_manifest",
                "keyframes",
                "raw_mllm_json",
                "cleaned_json",
                "detections",
                "restored_scripts",
                "script_pairs",
                "loss_rate_report",
            ):
                seen(asset)
            page.wait_for_timeout(1500)  # the graph's zoom-to-fit animation
            page.screenshot(path=out / "asset-graph.png")
            page.context.close()

            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(90_000)
            seen = _seen(expect, page)

            # 2. The partitions of keyframes, the mended drama selected: materialized by the re-run.
            page.goto(f"{platform.ui_url}/assets/keyframes?view=partitions&partition={BROKEN}")
            for drama_id in DRAMAS:
                seen(drama_id)
            seen("Failed (0)")
            expect(page.get_by_text("Materialized (").first).to_have_text(re.compile(r"Materialized \([34]\)"))
            seen("Latest materialization")
            seen(rerun[:8])
            page.screenshot(path=out / "keyframes-partitions.png")

            # 3. The Checks tab of drama_manifest: the loss-rate check failed (the mended drama
            #    still carries its corrupt file), the blocking has_episodes check passed.
            page.goto(f"{platform.ui_url}/assets/drama_manifest?view=checks")
            seen("Checks (2)")
            for check, status in (("file_loss_rate", "Failed"), ("has_episodes", "Succeeded")):
                item = page.locator("a, button, div").filter(has_text=re.compile(rf"^({check}\s*)+{status}$"))
                expect(item.first).to_be_visible()
            seen("Share of files that are not usable episodes (warns above 10%).")  # the check's description
            seen("loss_rate")
            page.screenshot(path=out / "drama-manifest-checks.png")

            # 4. The backfill page: one run per drama, the broken one failed, the others succeeded.
            page.goto(f"{platform.ui_url}/runs/b/{reexecuted['id']}?tab=runs")
            for drama_id in DRAMAS:
                seen(f"partition: {drama_id}")
            expect(page.get_by_text("Failure", exact=True)).to_have_count(1)
            expect(page.get_by_text("Success", exact=True)).to_have_count(2)
            seen("3 partitions")
            page.screenshot(path=out / "backfill.png")

            # 5. The backfills list: the backfill failed, its re-execution from failure succeeded.
            page.goto(f"{platform.ui_url}/overview/backfills")
            seen(reexecuted["id"])
            seen(reexecuted["retry_id"])
            seen("Failure")
            seen("Success")
            page.screenshot(path=out / "backfills.png")
        finally:
            browser.close()
    assert {p.name for p in out.glob("*.png")} >= {
        "asset-graph.png",
        "keyframes-partitions.png",
        "drama-manifest-checks.png",
        "backfill.png",
        "backfills.png",
    }


# --- scheduled materialization ----------------------------------------------------------------------


def test_new_drama_folder_is_picked_up_by_the_sensor(platform: Platform):
    # FRESH appeared in the landing zone after the sensor's first tick (see `platform`); the
    # daemon's next tick registers it as a partition and requests a run of the job with the
    # job's own defaults (multiprocess executor), which completes.
    [run] = wait_for_runs(platform, f"the sensor's run for {FRESH}", 1, **{"dagster/partition": FRESH})
    assert run["jobName"] == JOB and run["status"] == "SUCCESS", platform.log_tail("daemon")
    assert run["tags"]["dagster/sensor_name"] == "new_dramas"
    assert run["tags"]["dagster/run_key"] == FRESH

    ticks = _sensor(platform)["ticks"]
    assert _sensor(platform)["status"] == "RUNNING"
    [requested] = [t for t in ticks if run["runId"] in t["runIds"]]
    assert requested["status"] == "SUCCESS"
    assert not [t for t in ticks if t["status"] == "FAILURE"], ticks

    instance = platform.instance()
    try:
        assert instance.has_dynamic_partition("dramas", FRESH)
        assert _materialized_run(instance, "script_pairs", FRESH) == run["runId"]
    finally:
        instance.dispose()
    fresh = _catalog_counts(platform, FRESH)
    assert fresh["drama_run"] == run["runId"] and fresh["episodes"] == 1 and fresh["release_shards"] >= 1
    # One run only: later ticks see a known drama and skip.
    assert len(platform.runs(**{"dagster/partition": FRESH})) == 1
