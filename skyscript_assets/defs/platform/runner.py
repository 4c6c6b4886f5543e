"""Materialize one drama in-process, asset by asset, reporting progress (used by the CLI).

Each asset is its own run against the given instance, so the runs, materializations and
check results show up in the Dagster UI exactly as if launched from there.
"""

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.resources import local_resources

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class AssetOutcome:
    asset: str
    ok: bool
    seconds: float
    metadata: dict = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    error: str = ""


def register_drama(instance: dg.DagsterInstance, drama_id: str) -> bool:
    """Add the partition if new; True when it was added."""
    if instance.has_dynamic_partition(dramas_partitions.name, drama_id):
        return False
    instance.add_dynamic_partitions(dramas_partitions.name, [drama_id])
    return True


RUN_HOST_TAG, RUN_PID_TAG = "skyscript/host", "skyscript/pid"


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark as failed the runs this machine started in-process whose process is gone (killed
    with `kill -9`, or the machine slept): without it they would show STARTED forever.
    Returns their run ids."""
    host, dead = socket.gethostname(), []
    for record in instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={RUN_HOST_TAG: host})
    ):
        run = record.dagster_run
        pid = int(run.tags.get(RUN_PID_TAG, "0") or 0)
        if pid and not _alive(pid):
            instance.report_run_failed(run, f"its process {pid} on {host} is gone (killed or crashed)")
            dead.append(run.run_id)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def materialize_drama(
    drama_id: str,
    assets: Sequence[dg.AssetsDefinition],
    *,
    instance: dg.DagsterInstance,
    resources: dict | None = None,
    asset_config: dict[str, dict] | None = None,
    on_progress: Callable[[str], None] = print,
) -> list[AssetOutcome]:
    """Each of `assets` for the partition `drama_id` (None: unpartitioned assets), in order.
    `asset_config` gives run config per asset name (e.g. {"keyframes": {"workers": 2}})."""
    outcomes: list[AssetOutcome] = []
    resources = resources or local_resources()
    for run_id in fail_dead_runs(instance):
        on_progress(f"run {run_id} was left STARTED by a process that is gone: marked failed")
    for number, asset in enumerate(assets, start=1):
        name = asset.key.to_user_string()
        on_progress(f"[{number}/{len(assets)}] {name} ...")
        started = time.perf_counter()
        run_config = dict(QUIET_LOGS)
        if asset_config and name in asset_config:
            run_config["ops"] = {name: {"config": asset_config[name]}}
        result = dg.materialize(
            assets,
            selection=[asset.key],
            partition_key=drama_id,
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config=run_config,
            tags={"skyscript/trigger": "cli", RUN_HOST_TAG: socket.gethostname(), RUN_PID_TAG: str(os.getpid())},
        )
        outcome = AssetOutcome(asset=name, ok=result.success, seconds=time.perf_counter() - started)
        for event in result.get_asset_materialization_events():
            outcome.metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_check_evaluations():
            if not event.passed:
                why = f": {event.description}" if event.description else ""
                outcome.failed_checks.append(f"{event.check_name} ({event.severity.value.lower()}){why}")
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            outcome.error = (
                failures[0].step_failure_data.error.message.strip().splitlines()[0]
                if failures and failures[0].step_failure_data.error
                else "run failed"
            )
        outcomes.append(outcome)
        summary = ", ".join(
            f"{k}={v}" for k, v in outcome.metadata.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        checks = f"; failed checks: {', '.join(outcome.failed_checks)}" if outcome.failed_checks else ""
        status = "done" if outcome.ok else f"FAILED: {outcome.error}"
        on_progress(f"[{number}/{len(assets)}] {name} {status} in {outcome.seconds:.1f}s  {summary}{checks}")
        if not outcome.ok:
            break  # downstream assets would only fail on missing inputs
    return outcomes


def summary_lines(drama_id: str, outcomes: Sequence[AssetOutcome], losses: Sequence) -> list[str]:
    """The table the CLI prints after a drama: each asset's status, time and numeric figures, then the losses."""
    lines = [f"\nSummary for drama {drama_id!r}"]
    rows = [("asset", "status", "seconds", "key figures")]
    for o in outcomes:
        figures = ", ".join(
            f"{k}={v}" for k, v in o.metadata.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        rows.append((o.asset, "ok" if o.ok else "FAILED", f"{o.seconds:.1f}", figures))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    lines += [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows]
    lines.append(f"  losses recorded: {len(losses)}")
    lines += [f"    [{loss.stage}/{loss.reason}] {loss.detail}" for loss in losses[:20]]
    return lines


def run_drama(
    drama_id: str,
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetsDefinition],
    reports: Sequence[dg.AssetsDefinition],
    on_progress: Callable[[str], None] = print,
) -> list[AssetOutcome]:
    """The drama's assets in order, then (if they all passed) the cross-drama reports."""
    outcomes = materialize_drama(drama_id, assets, instance=instance, on_progress=on_progress)
    if all(o.ok for o in outcomes):
        outcomes += materialize_drama(None, reports, instance=instance, on_progress=on_progress)
    return outcomes
