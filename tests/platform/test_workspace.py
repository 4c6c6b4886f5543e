"""The code location loads the way every deployment loads it: the repository's workspace.yaml
(`dagster dev`, `skyscript ui`) and `--module-name skyscript_assets.definitions` (the Docker
images' `dagster api grpc`, the Helm values) both rely on Dagster finding exactly one
`Definitions` object at the module's top level."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_repository_workspace_loads(tmp_path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(dagster_home), SKYSCRIPT_HOME=str(tmp_path / "skyscript_home"))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
