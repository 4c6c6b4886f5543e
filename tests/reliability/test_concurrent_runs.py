"""Two runs of one drama at once: the second stops in one line without doing or writing anything,
and a lock never outlives the process that held it (a run killed with kill -9)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest
import skimage.data

from skyscript_assets.catalog import Catalog, EpisodeProgress, LockHeld
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.defs.video.assets import keyframes
from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.settings import database_url


def _hold_in_another_process(url: str, name: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from skyscript_assets.catalog import Catalog
        with Catalog({url!r}).exclusive({name!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_lock_is_exclusive_across_processes_and_dies_with_its_holder(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'catalog.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    db = Catalog(url)
    holder = _hold_in_another_process(url, "keyframes@drama-1")
    try:
        with pytest.raises(LockHeld, match="another run is already working on keyframes@drama-1"):
            with db.exclusive("keyframes@drama-1"):
                pass
        with db.exclusive("keyframes@drama-2"):  # another drama is not held up
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    for _ in range(50):  # the server notices the dropped connection within moments
        try:
            with db.exclusive("keyframes@drama-1"):
                break
        except LockHeld:
            time.sleep(0.1)
    else:
        pytest.fail("the lock outlived the process killed while holding it")


def test_a_second_run_of_the_same_drama_stops_in_one_line_and_writes_nothing(skyscript_home):
    folder = skyscript_home / "landing" / "busy-drama"
    render_video(folder / "ep1.mp4", [ShotSpec(skimage.data.astronaut(), 1.0)], size=(160, 96))
    resources = local_resources()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("dramas", ["busy-drama"])
        assert dg.materialize(
            [drama_manifest], partition_key="busy-drama", instance=instance, resources=resources
        ).success
        db = Catalog(database_url())
        holder = _hold_in_another_process(database_url(), "keyframes@busy-drama")  # the first run, still working
        try:
            second = dg.materialize(
                [keyframes],
                partition_key="busy-drama",
                instance=instance,
                resources=resources,
                run_config={"ops": {"keyframes": {"config": {"workers": 1}}}},
                raise_on_error=False,
            )
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        assert not second.success
        [failure] = [e for e in second.all_events if e.is_step_failure]
        message = failure.step_failure_data.user_failure_data.description
        assert message == "another run is already working on keyframes@busy-drama; this run stops without writing"
        assert db.count(EpisodeProgress, asset_key="keyframes") == 0
        # once the first run is gone, the drama goes on
        again = dg.materialize(
            [keyframes],
            partition_key="busy-drama",
            instance=instance,
            resources=resources,
            run_config={"ops": {"keyframes": {"config": {"workers": 1}}}},
        )
        assert again.success and db.count(EpisodeProgress, asset_key="keyframes") == 1


def test_runs_left_started_by_a_dead_process_are_marked_failed():
    import socket

    from skyscript_assets.defs.platform.runner import RUN_HOST_TAG, RUN_PID_TAG, fail_dead_runs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with dg.instance_for_test() as instance:

        def started(pid: int) -> str:
            run = instance.add_run(
                dg.DagsterRun(
                    job_name="__ASSET_JOB",
                    status=dg.DagsterRunStatus.STARTED,
                    tags={RUN_HOST_TAG: socket.gethostname(), RUN_PID_TAG: str(pid)},
                )
            )
            return run.run_id

        dead, alive = started(gone.pid), started(os.getpid())
        assert fail_dead_runs(instance) == [dead]
        assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
