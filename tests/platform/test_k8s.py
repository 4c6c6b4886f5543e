"""Kubernetes deployment without a cluster: Helm charts render and validate against the
Kubernetes schemas, deployments/dagster.yaml loads (K8sRunLauncher included) against the real
Postgres, GPU step pods are built by dagster-k8s's own builders, and the k8s profile
materializes a drama from an S3 landing zone with its lineage in Postgres and its artifacts in S3
(a local moto server)."""

import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from urllib.parse import urlparse

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from kubernetes.client import ApiClient

from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform import k8s as k8s_defs
from skyscript_assets.defs.platform.profiles import build_profile, current_profile

ROOT = Path(__file__).resolve().parents[2]
KUBE_VERSION = "1.30"
LMDEPLOY_RELEASE, NAMESPACE = "lmdeploy-internvl2", "skyscript"


def _validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def _dagster_values() -> dict:
    return yaml.safe_load((ROOT / "helm" / "dagster" / "values.yaml").read_text())


def _user_deployment() -> dict:
    (deployment,) = _dagster_values()["dagster-user-deployments"]["deployments"]
    return deployment


def _user_code_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in _user_deployment()["env"]}


def _render_lmdeploy(values: dict | None = None) -> dict[str, dict]:
    import helm_python as helm

    rendered = helm.Chart.load(ROOT / "helm" / "lmdeploy").render(
        values or {}, name=LMDEPLOY_RELEASE, namespace=NAMESPACE
    )
    docs = [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]
    return {doc["kind"]: doc for doc in docs}


# --- Helm --------------------------------------------------------------------------------------


def test_lmdeploy_chart_renders_valid_manifests_serving_the_mllm_url():
    manifests = _render_lmdeploy({"apiKeySecret": "lmdeploy-api-key"})
    assert set(manifests) == {"Deployment", "Service", "NetworkPolicy"}
    for manifest in manifests.values():
        _validate(manifest)

    deployment, service = manifests["Deployment"], manifests["Service"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    tp = int(container["args"][container["args"].index("--tp") + 1])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == tp  # one GPU per tensor-parallel rank
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["command"] == ["lmdeploy", "serve", "api_server"]
    # the API key comes from the Secret, never from values
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "lmdeploy-api-key", "key": "api-key"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}[service["spec"]["ports"][0]["targetPort"]]
    assert port == int(container["args"][container["args"].index("--server-port") + 1])

    # the user code's OpenAI-compatible base URL points at exactly this Service
    url = urlparse(_user_code_env()["SKYSCRIPT_MLLM_BASE_URL"])
    assert url.hostname == f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert url.port == service["spec"]["ports"][0]["port"] and url.path == "/v1"
    assert _user_code_env()["SKYSCRIPT_MLLM_MODEL"] == container["args"][container["args"].index("--model-name") + 1]


def test_lmdeploy_chart_passes_helm_lint():
    import helm_python as helm

    report = helm.lint(ROOT / "helm" / "lmdeploy", strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # warnings and errors


def test_kubernetes_schemas_reject_a_broken_manifest():
    deployment = _render_lmdeploy()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = {"count": 4}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(deployment)
    without_api_key = _render_lmdeploy({"apiKeySecret": ""})["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--api-keys" not in without_api_key["args"]
    assert "LMDEPLOY_API_KEY" not in {e["name"] for e in without_api_key.get("env", [])}


def test_dagster_chart_values_agree_with_dagster_yaml():
    values = _dagster_values()
    instance = yaml.safe_load((ROOT / "deployments" / "dagster.yaml").read_text())
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher" == instance["run_launcher"]["class"]
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] == instance["run_launcher"]["config"]["postgres_password_secret"]
    assert [s["name"] for s in launcher["envSecrets"]] == instance["run_launcher"]["config"]["env_secrets"]
    assert launcher["volumes"] == instance["run_launcher"]["config"]["volumes"]
    assert launcher["volumeMounts"] == instance["run_launcher"]["config"]["volume_mounts"]
    assert (
        launcher["runK8sConfig"]["containerConfig"]
        == instance["run_launcher"]["config"]["run_k8s_config"]["container_config"]
    )
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    assert values["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert values["dagsterDaemon"]["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is instance["run_monitoring"]["enabled"] is True
    user = _user_deployment()
    assert user["dagsterApiGrpcArgs"] == ["--module-name", "skyscript_assets.definitions"]
    assert _user_code_env()["SKYSCRIPT_PROFILE"] == "k8s"
    secret_names = {s["name"] for s in user["envSecrets"]}
    # no credential is spelled out in values: every env value is a plain setting
    assert not any(re.search(r"password|secret|key_id|access_key", e["name"], re.I) for e in user["env"])
    assert secret_names == {"skyscript-env"}


# --- Dockerfiles -------------------------------------------------------------------------------


def _dockerfile(name: str) -> dict:
    lines = (ROOT / "deployments" / name).read_text().replace("\\\n", " ").splitlines()
    instructions = [
        line.strip().split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#")
    ]
    parsed: dict[str, list[str]] = {}
    for keyword, rest in instructions:
        parsed.setdefault(keyword.upper(), []).append(rest)
    return parsed


@pytest.mark.parametrize(
    ("name", "base", "install"),
    [
        ("Dockerfile", r"^python:3\.11", r"pip install \.(\s|$)"),
        ("Dockerfile.gpu", r"^nvidia/cuda:12\.\S+-runtime", r"pip install \"\.\[gpu\]\""),
    ],
)
def test_dockerfiles_serve_the_code_location_over_grpc(name, base, install):
    import json

    docker = _dockerfile(name)
    assert re.search(base, docker["FROM"][0])
    assert any(re.search(install, run) for run in docker["RUN"])
    cmd = json.loads(docker["CMD"][-1])
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[cmd.index("--module-name") + 1] == "skyscript_assets.definitions"
    assert cmd[cmd.index("--port") + 1] == str(_user_deployment()["port"])
    assert docker["USER"] and docker["USER"][-1] != "root"


# --- the Dagster instance of deployments/dagster.yaml on the real Postgres ----------------------


@pytest.fixture
def k8s_instance(postgres_url, tmp_path, monkeypatch):
    """deployments/dagster.yaml as the cluster sees it; the in-cluster kube config loading of
    K8sRunLauncher is the one thing replaced (there is no cluster here)."""
    url = urlparse(postgres_url.replace("postgresql+psycopg2", "postgresql"))
    for name, value in {
        "DAGSTER_PG_HOST": url.hostname,
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_USERNAME": url.username,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": url.path.lstrip("/"),
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_SERVICE_ACCOUNT": "dagster",
        "DAGSTER_K8S_NAMESPACE": NAMESPACE,
    }.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deployments" / "dagster.yaml", home / "dagster.yaml")
    with mock.patch("dagster_k8s.launcher.load_kubernetes_config") as load_kube_config:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield SimpleNamespace(instance=instance, load_kube_config=load_kube_config)


@pytest.mark.postgres
def test_dagster_yaml_loads_with_k8s_run_launcher_on_postgres(k8s_instance):
    from dagster_k8s import K8sRunLauncher

    instance = k8s_instance.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    k8s_instance.load_kube_config.assert_called_once()
    assert k8s_instance.load_kube_config.call_args.kwargs["load_incluster_config"] is True
    assert launcher.job_namespace == NAMESPACE and launcher.env_secrets == ["skyscript-env"]
    assert launcher.postgres_password_secret == "dagster-postgresql-secret"
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.run_monitoring_enabled
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 4


# --- GPU step pods -----------------------------------------------------------------------------


@dg.asset(pool="gpu", op_tags=k8s_defs.gpu_op_tags(gpus=2, memory="48Gi"))
def big_gpu_stage() -> None:
    """Test-only GPU asset that declares its own demand."""


@dg.asset(pool="gpu", deps=[big_gpu_stage])
def plain_gpu_stage() -> None:
    """Test-only GPU asset with pool="gpu" only: gets the deployment's default GPU count."""


@dg.asset(deps=[plain_gpu_stage])
def cpu_stage() -> None:
    """Test-only CPU asset."""


def _step_job(instance, job: dg.JobDefinition, op_name: str) -> dict:
    """The Kubernetes Job that k8s_job_executor would create for one step, built by dagster-k8s."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.executor.init import InitExecutorContext
    from dagster._core.system_config.objects import ResolvedRunConfig
    from dagster_k8s.job import construct_dagster_k8s_job

    # the same path as dagster's create_executor: run config resolved for the job, then the executor
    executor_config = ResolvedRunConfig.build(job, {}).execution.execution_engine_config
    with mock.patch("kubernetes.config.load_incluster_config"):
        executor = job.executor_def.executor_creation_fn(
            InitExecutorContext(
                job=InMemoryJob(job), executor_def=job.executor_def, executor_config=executor_config, instance=instance
            )
        )
    handler = executor._step_handler
    step_key = op_name
    context = SimpleNamespace(
        dagster_run=dg.DagsterRun(job_name=job.name, run_id="0123456789abcdef"),
        instance=instance,
        step_tags={step_key: create_execution_plan(job).get_step_by_key(step_key).tags},
        execute_step_args=SimpleNamespace(step_keys_to_execute=[step_key]),
        get_step_context=lambda key: SimpleNamespace(step=SimpleNamespace(op_name=op_name)),
    )
    container_context = handler._get_container_context(context)
    job_config = container_context.get_k8s_job_config(handler._executor_image, instance.run_launcher)
    if not job_config.job_image:
        job_config = job_config.with_image(
            _user_deployment()["image"]["repository"] + ":" + _user_deployment()["image"]["tag"]
        )
    body = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{op_name}",
        pod_name=f"dagster-step-{op_name}",
        component="step_worker",
        user_defined_k8s_config=container_context.run_k8s_config,
        labels={"dagster/op": op_name},
    )
    return ApiClient().sanitize_for_serialization(body)


@pytest.mark.postgres
def test_gpu_steps_get_gpu_pods_as_the_helm_values_place_them(k8s_instance, monkeypatch):
    env = _user_code_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assets = [big_gpu_stage, plain_gpu_stage, cpu_stage]
    profile = build_profile(assets, "k8s")
    defs = dg.Definitions(assets=assets, jobs=profile.jobs, resources=profile.resources, executor=profile.executor)
    gpu_pipeline = defs.resolve_job_def("gpu_pipeline")
    assert {n.name for n in gpu_pipeline.nodes} == {"big_gpu_stage", "plain_gpu_stage"}
    from dagster._core.system_config.objects import ResolvedRunConfig

    executor_config = ResolvedRunConfig.build(gpu_pipeline, {}).execution.execution_engine_config
    assert executor_config["max_concurrent"] == int(env["SKYSCRIPT_MAX_STEP_PODS"])

    instance = k8s_instance.instance
    big = _step_job(instance, gpu_pipeline, "big_gpu_stage")
    plain = _step_job(instance, gpu_pipeline, "plain_gpu_stage")
    for manifest in (big, plain):
        _validate(manifest)
        pod = manifest["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == env["SKYSCRIPT_GPU_IMAGE"]
        assert pod["nodeSelector"] == dict([env["SKYSCRIPT_GPU_NODE_SELECTOR"].split("=")])
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        # the run launcher's secrets reach the step pods too (catalog URL, S3 credentials)
        assert {"secretRef": {"name": "skyscript-env"}} in container["envFrom"]
        # and so do the model weights, read-only
        (weights,) = [v for v in pod["volumes"] if v["name"] == "model-weights"]
        assert weights["persistentVolumeClaim"] == {"claimName": "skyscript-model-weights", "readOnly": True}
        assert {"name": "model-weights", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert big["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu": "2",
        "memory": "48Gi",
    }
    plain_resources = plain["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert plain_resources["limits"] == {
        "nvidia.com/gpu": env["SKYSCRIPT_GPUS_PER_STEP"],
        "memory": env["SKYSCRIPT_GPU_STEP_MEMORY"],
    }
    assert plain_resources["requests"] == {
        "cpu": "2",
        "memory": env["SKYSCRIPT_GPU_STEP_MEMORY"],
    }  # cpu: the run launcher's

    # the whole pipeline under the same executor: CPU steps stay off GPU nodes, with the run's image
    pipeline = defs.resolve_implicit_global_asset_job_def()
    cpu = _step_job(instance, pipeline, "cpu_stage")
    _validate(cpu)
    cpu_pod = cpu["spec"]["template"]["spec"]
    assert "nodeSelector" not in cpu_pod and "tolerations" not in cpu_pod
    assert "nvidia.com/gpu" not in (cpu_pod["containers"][0].get("resources") or {}).get("limits", {})
    assert cpu_pod["containers"][0]["image"] != env["SKYSCRIPT_GPU_IMAGE"]
    assert (
        _step_job(instance, pipeline, "plain_gpu_stage")["spec"]["template"]["spec"]["nodeSelector"]
        == pod["nodeSelector"]
    )


def test_gpu_placement_settings_parse_and_reject_malformed(monkeypatch):
    monkeypatch.setenv("SKYSCRIPT_GPU_NODE_SELECTOR", "cloud.google.com/gke-accelerator=nvidia-h100-80gb, pool=gpu")
    monkeypatch.setenv("SKYSCRIPT_GPU_TOLERATIONS", "nvidia.com/gpu=present:NoSchedule,dedicated:NoExecute")
    placement = k8s_defs.GpuPlacement.from_environment()
    assert placement.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb", "pool": "gpu"}
    assert placement.tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    ]
    monkeypatch.setenv("SKYSCRIPT_GPU_NODE_SELECTOR", "no-equals-sign")
    with pytest.raises(ValueError, match="key=value"):
        k8s_defs.GpuPlacement.from_environment()
    with pytest.raises(ValueError):
        k8s_defs.gpu_op_tags(gpus=0)


# --- profiles ----------------------------------------------------------------------------------


def test_profile_switch_selects_resources_and_executor(monkeypatch):
    monkeypatch.delenv("SKYSCRIPT_PROFILE", raising=False)
    assert current_profile() == "local"
    local = build_profile([drama_manifest])
    assert local.executor is None and local.jobs == [] and local.resources["catalog"].database_url == ""

    monkeypatch.setenv("SKYSCRIPT_PROFILE", "K8S")
    cluster = build_profile([drama_manifest])
    assert cluster.name == "k8s" and cluster.executor.name == "skyscript_k8s_job_executor"
    assert cluster.jobs == []  # no GPU asset, no gpu_pipeline
    assert set(cluster.resources) == set(local.resources)
    monkeypatch.setenv("SKYSCRIPT_PROFILE", "cloud")
    with pytest.raises(ValueError, match="local, k8s"):
        current_profile()


def test_k8s_restoration_llm_comes_from_the_environment_and_is_optional(monkeypatch):
    monkeypatch.setenv("SKYSCRIPT_PROFILE", "k8s")
    for name in ("SKYSCRIPT_RESTORE_BASE_URL", "SKYSCRIPT_RESTORE_MODEL_PATH", "SKYSCRIPT_RESTORE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    offline = build_profile([drama_manifest]).resources["restoration_llm"]
    assert offline.backend == "" and not offline.is_configured()  # the faithful renderer, said in the metadata
    monkeypatch.setenv("SKYSCRIPT_RESTORE_BASE_URL", "http://vllm-restorer.skyscript.svc:8000/v1")
    served = build_profile([drama_manifest]).resources["restoration_llm"]
    assert served.backend == "openai" and served.is_configured()
    monkeypatch.delenv("SKYSCRIPT_RESTORE_BASE_URL")
    monkeypatch.setenv("SKYSCRIPT_RESTORE_MODEL_PATH", "/models/qwen2-7b-instruct")
    in_process = build_profile([drama_manifest]).resources["restoration_llm"]
    assert (in_process.backend, in_process.model_path) == ("lmdeploy", "/models/qwen2-7b-instruct")


def test_code_location_loads_under_the_k8s_profile(monkeypatch):
    import importlib

    import skyscript_assets.definitions as definitions

    monkeypatch.setenv("SKYSCRIPT_PROFILE", "k8s")
    try:
        cluster = importlib.reload(definitions)
        assert cluster.defs.resolve_job_def("drama_pipeline").executor_def.name == "skyscript_k8s_job_executor"
        assert cluster.defs.resolve_sensor_def("new_dramas").job_name == "drama_pipeline"
    finally:
        monkeypatch.delenv("SKYSCRIPT_PROFILE")
        importlib.reload(definitions)


# --- a drama on the k8s profile: lineage in Postgres, artifacts in S3 ---------------------------


@dg.asset(partitions_def=drama_manifest.partitions_def, deps=[drama_manifest], kinds={"python"})
def episode_count(context: dg.AssetExecutionContext, artifacts: dg.ResourceParam[object]) -> dg.MaterializeResult:
    """Test-only child of drama_manifest, reading its artifact back from the store."""
    manifest = artifacts.get().read_json(context.partition_key, "drama_manifest", "manifest.json")
    return dg.MaterializeResult(metadata={"episodes": len(manifest["episodes"])})


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    import fsspec
    from s3fs import S3FileSystem

    # s3fs caches filesystems by their arguments, not by the endpoint in the environment: a cached one
    # would still point at an earlier test's (stopped) server
    S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("skyscript-artifacts")
    try:
        yield fs
    finally:
        server.stop()
        S3FileSystem.clear_instance_cache()


@pytest.mark.postgres
def test_k8s_profile_materializes_a_drama_from_s3_with_lineage_in_postgres(
    k8s_instance, postgres_url, s3_server, tmp_path, monkeypatch, make_video
):
    from sqlalchemy import create_engine, text

    video, _ = make_video(tmp_path / "ep1.mp4")
    s3_server.mkdir("skyscript-landing")
    s3_server.put(str(video), "skyscript-landing/k8s-drama/ep1.mp4")
    monkeypatch.setenv("SKYSCRIPT_DATABASE_URL", postgres_url)
    monkeypatch.setenv("SKYSCRIPT_LANDING_URL", "s3://skyscript-landing")
    monkeypatch.setenv("SKYSCRIPT_ARTIFACTS_URL", "s3://skyscript-artifacts/v1")
    resources = build_profile([drama_manifest], "k8s").resources
    assert isinstance(resources["artifacts"].root_url, dg.EnvVar)  # resolved when the run starts

    instance = k8s_instance.instance
    instance.add_dynamic_partitions("dramas", ["k8s-drama"])
    result = dg.materialize(
        [drama_manifest, episode_count], partition_key="k8s-drama", instance=instance, resources=resources
    )
    assert result.success
    assert s3_server.exists("skyscript-artifacts/v1/k8s-drama/drama_manifest/manifest.json")
    assert result.asset_materializations_for_node("episode_count")[0].metadata["episodes"].value == 1

    # lineage, read back from Postgres: each materialization, and the child's pointer to its parent's event
    parent = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("drama_manifest"), asset_partitions=["k8s-drama"]), limit=1
    ).records[0]
    child = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("episode_count"), asset_partitions=["k8s-drama"]), limit=1
    ).records[0]
    assert parent.run_id == child.run_id == result.run_id
    child_tags = child.asset_materialization.tags
    assert int(child_tags["dagster/input_event_pointer/drama_manifest"]) == parent.storage_id
    assert instance.get_run_by_id(result.run_id).is_success

    engine = create_engine(postgres_url)
    with engine.connect() as conn:  # the same facts straight from Dagster's tables in Postgres
        rows = conn.execute(
            text(
                "select asset_key, partition from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
                "and run_id = :run"
            ),
            {"run": result.run_id},
        ).all()
        catalog_runs = (
            conn.execute(text("select distinct run_id from episodes where partition = 'k8s-drama'")).scalars().all()
        )
        episode_uri = conn.execute(text("select uri from episodes where partition = 'k8s-drama'")).scalar()
    engine.dispose()
    assert sorted((dg.AssetKey.from_db_string(key).to_user_string(), partition) for key, partition in rows) == [
        ("drama_manifest", "k8s-drama"),
        ("episode_count", "k8s-drama"),
    ]
    assert catalog_runs == [result.run_id]  # catalog rows beside Dagster's, same run id
    assert episode_uri == "s3://skyscript-landing/k8s-drama/ep1.mp4"  # probed straight from the bucket
