"""Kubernetes hardening without a cluster: every pod we define or that dagster-k8s builds for us
meets the "restricted" Pod Security Standard (a checker written here from the standard, shown to
reject bad pods), the MLLM and Postgres are behind NetworkPolicies that admit the right pods, the
MLLM API key comes from one Secret at both ends, step pods request CPU, and the `gpu` pool limit is
one figure.

Pods checked: the lmdeploy chart, rendered by Helm; the Dagster chart's webserver, daemon and code
server, assembled from helm/dagster/values.yaml as the official chart's templates assemble them
(the chart cannot be fetched offline); run and step pods built by dagster-k8s itself
(K8sRunLauncher.launch_run, k8s_job_executor's step handler) from deployments/dagster.yaml, the
code location's container context of the values (includeConfigInLaunchedRuns) and
skyscript_assets/defs/platform/k8s.py."""

import copy
import re
from unittest import mock

import dagster as dg
import pytest
import yaml
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.models import k8s_snake_case_dict
from kubernetes import client as k8s_client
from kubernetes.client import ApiClient
from test_k8s import (  # noqa: F401  (k8s_instance: the fixture, reused)
    NAMESPACE,
    ROOT,
    _dagster_values,
    _dockerfile,
    _render_lmdeploy,
    _step_job,
    _user_code_env,
    _user_deployment,
    _validate,
    big_gpu_stage,
    cpu_stage,
    k8s_instance,
    plain_gpu_stage,
)

from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform import k8s as k8s_defs
from skyscript_assets.defs.platform.profiles import build_profile

DAGSTER_RELEASE = "dagster"

# --- the "restricted" Pod Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/)

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}


def _pod_template(manifest: dict) -> tuple[dict, dict]:
    """(metadata, spec) of the pod a Pod, Job or Deployment manifest runs."""
    if manifest["kind"] == "Pod":
        return manifest.get("metadata", {}), manifest["spec"]
    template = manifest["spec"]["template"]
    return template.get("metadata", {}), template["spec"]


def restricted_violations(manifest: dict) -> list[str]:
    """Every way the pod of `manifest` breaks the baseline or restricted Pod Security Standard
    (Kubernetes 1.30), as readable sentences; [] for a compliant pod."""
    metadata, pod = _pod_template(manifest)
    found: list[str] = []
    pod_sc = pod.get("securityContext") or {}

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"pod: {field} is set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(
                f"volume {volume['name']}: type {sorted(kinds - RESTRICTED_VOLUME_TYPES)} is not allowed"
                + (" (hostPath)" if "hostPath" in kinds else "")
            )
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"pod: sysctl {sysctl['name']} is not in the safe set")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod: runAsUser is 0 (root)")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        found.append("pod: windowsOptions.hostProcess is set")
    found += _selinux_violations("pod", pod_sc)
    if (pod_sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append("pod: appArmorProfile is Unconfined")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_TYPES:
        found.append(f"pod: seccompProfile {pod_seccomp} is not RuntimeDefault or Localhost")

    containers = [
        (kind, c) for kind in ("initContainers", "containers", "ephemeralContainers") for c in pod.get(kind) or []
    ]
    if not pod.get("containers"):
        found.append("pod: no containers")
    for kind, container in containers:
        where = f"{kind}[{container['name']}]"
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            found.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot") is False or not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            found.append(f"{where}: runAsNonRoot is not true (neither on the container nor on the pod)")
        if sc.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser is 0 (root)")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in SECCOMP_TYPES:
            found.append(f"{where}: seccompProfile {seccomp} is not RuntimeDefault or Localhost")
        elif seccomp is None and pod_seccomp not in SECCOMP_TYPES:
            found.append(f"{where}: no seccompProfile RuntimeDefault or Localhost (on the container or the pod)")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{where}: capabilities add {sorted(added)} (only NET_BIND_SERVICE may be added)")
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append(f"{where}: hostPort is set")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount is {sc['procMount']}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where}: windowsOptions.hostProcess is set")
        found += _selinux_violations(where, sc)
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where}: appArmorProfile is Unconfined")
        annotations = metadata.get("annotations") or {}
        annotation = annotations.get(f"container.apparmor.security.beta.kubernetes.io/{container['name']}")
        if annotation is not None and annotation != "runtime/default" and not annotation.startswith("localhost/"):
            found.append(f"{where}: AppArmor annotation {annotation}")
    return found


def _selinux_violations(where: str, security_context: dict) -> list[str]:
    options = security_context.get("seLinuxOptions") or {}
    found = []
    if options.get("type", "") not in SELINUX_TYPES:
        found.append(f"{where}: seLinuxOptions.type {options['type']}")
    if options.get("user") or options.get("role"):
        found.append(f"{where}: seLinuxOptions sets user or role")
    return found


def hardening_violations(manifest: dict, writable: tuple[str, ...] = ("/tmp",)) -> list[str]:
    """What SkyScript asks beyond the standard: uid/gid of the images, a read-only root filesystem
    and an emptyDir at every path that must stay writable."""
    _, pod = _pod_template(manifest)
    found = []
    pod_sc = pod.get("securityContext") or {}
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        if pod_sc.get(field) != k8s_defs.RUN_AS_USER:
            found.append(f"pod: {field} is {pod_sc.get(field)!r}, not {k8s_defs.RUN_AS_USER}")
    empty_dirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    names = [v["name"] for v in pod.get("volumes") or []]
    if len(names) != len(set(names)):
        found.append(f"pod: volume names repeat: {names}")
    for kind in ("initContainers", "containers"):
        for container in pod.get(kind) or []:
            where = f"{kind}[{container['name']}]"
            if not (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
                found.append(f"{where}: the root filesystem is writable")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
            if len(mounts) != len(container.get("volumeMounts") or []):
                found.append(f"{where}: mount paths repeat")
            if kind == "containers":
                for path in writable:
                    if mounts.get(path) not in empty_dirs:
                        found.append(f"{where}: {path} is not a writable emptyDir")
    return found


# --- the pods ----------------------------------------------------------------------------------


def _render_chart(chart: str, release: str, values: dict | None = None) -> list[dict]:
    import helm_python as helm

    rendered = helm.Chart.load(ROOT / "helm" / chart).render(values or {}, name=release, namespace=NAMESPACE)
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def _pod(name: str, labels: dict, spec: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": spec,
    }


def _dagster_chart_pods() -> dict[str, dict]:
    """The webserver, daemon and code-server pods of the official chart for these values, put
    together as its templates do (templates/helpers/_deployment-webserver.tpl, deployment-daemon.yaml,
    charts/dagster-user-deployments/templates/deployment-user.yaml): `podSecurityContext` is the
    pod's, `securityContext` every container's, init containers included; the chart's own
    ConfigMap volumes sit beside the values' volumes; labels are the chart's selector labels."""
    values = _dagster_values()
    home = "/opt/dagster/dagster_home"
    image = "docker.io/dagster/dagster-celery-k8s:1.13.27"
    instance_mount = {"name": "dagster-instance", "mountPath": f"{home}/dagster.yaml", "subPath": "dagster.yaml"}
    instance_volume = {"name": "dagster-instance", "configMap": {"name": f"{DAGSTER_RELEASE}-instance"}}
    chart_labels = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": DAGSTER_RELEASE}
    deployment = _user_deployment()
    check_db = {
        "name": "check-db-ready",
        "image": "docker.io/library/postgres:14.6",
        "command": ["sh", "-c", "until pg_isready -h postgres.skyscript.svc -p 5432; do sleep 2; done"],
    }

    web = values["dagsterWebserver"]
    webserver = _pod(
        "dagster-webserver",
        {**chart_labels, "component": "dagster-webserver"},
        {
            "serviceAccountName": DAGSTER_RELEASE,
            "automountServiceAccountToken": True,
            "securityContext": web["podSecurityContext"],
            "initContainers": [
                {**check_db, "securityContext": web["securityContext"]},
                {
                    "name": f"init-user-deployment-{deployment['name']}",
                    "image": "docker.io/library/busybox:1.28",
                    "command": ["sh", "-c", f"until nslookup {deployment['name']}; do sleep 2; done"],
                    "securityContext": web["securityContext"],
                },
            ],
            "containers": [
                {
                    "name": "dagster",
                    "image": image,
                    "securityContext": web["securityContext"],
                    "command": [
                        "/bin/bash",
                        "-c",
                        "dagster-webserver -h 0.0.0.0 -p 80 -w /dagster-workspace/workspace.yaml",
                    ],
                    "volumeMounts": [
                        instance_mount,
                        {"name": "dagster-workspace-yaml", "mountPath": "/dagster-workspace/"},
                        *web["volumeMounts"],
                    ],
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                }
            ],
            "volumes": [
                instance_volume,
                {"name": "dagster-workspace-yaml", "configMap": {"name": f"{DAGSTER_RELEASE}-workspace-yaml"}},
                *web["volumes"],
            ],
        },
    )
    daemon_values = values["dagsterDaemon"]
    daemon = _pod(
        "dagster-daemon",
        {**chart_labels, "component": "dagster-daemon", "deployment": "daemon"},
        {
            "serviceAccountName": DAGSTER_RELEASE,
            "securityContext": daemon_values["podSecurityContext"],
            "initContainers": [{**check_db, "securityContext": daemon_values["securityContext"]}],
            "containers": [
                {
                    "name": "dagster",
                    "image": image,
                    "command": ["dagster-daemon"],
                    "args": ["run"],
                    "securityContext": daemon_values["securityContext"],
                    "volumeMounts": [instance_mount, *daemon_values["volumeMounts"]],
                }
            ],
            "volumes": [instance_volume, *daemon_values["volumes"]],
        },
    )
    code_server = _pod(
        f"dagster-{deployment['name']}",
        {
            "app.kubernetes.io/name": "dagster-user-deployments",
            "app.kubernetes.io/instance": DAGSTER_RELEASE,
            "component": "user-deployments",
            "deployment": deployment["name"],
        },
        {
            "serviceAccountName": f"{DAGSTER_RELEASE}-dagster-user-deployments-user-deployments",
            "automountServiceAccountToken": True,
            "securityContext": deployment["podSecurityContext"],
            "containers": [
                {
                    "name": "dagster-user-deployments",
                    "securityContext": deployment["securityContext"],
                    "image": f"{deployment['image']['repository']}:{deployment['image']['tag']}",
                    "args": [
                        "dagster",
                        "api",
                        "grpc",
                        "-h",
                        "0.0.0.0",
                        "-p",
                        str(deployment["port"]),
                        *deployment["dagsterApiGrpcArgs"],
                    ],
                    "env": [{"name": "DAGSTER_HOME", "value": home}, *deployment["env"]],
                    "envFrom": [{"secretRef": s} for s in deployment["envSecrets"]],
                    "resources": deployment["resources"],
                    "volumeMounts": deployment["volumeMounts"],
                }
            ],
            "volumes": deployment["volumes"],
        },
    )
    return {"webserver": webserver, "daemon": daemon, "code-server": code_server}


def _code_location_container_context() -> dict:
    """What the chart's code server hands to every run it launches (includeConfigInLaunchedRuns:
    the chart's dagsterUserDeployments.k8sContainerContext helper)."""
    deployment = _user_deployment()
    return {
        "k8s": {
            "image_pull_policy": deployment["image"]["pullPolicy"],
            "env_config_maps": [f"{DAGSTER_RELEASE}-{deployment['name']}-user-env"],
            "env_secrets": [s["name"] for s in deployment["envSecrets"]],
            "volume_mounts": deployment["volumeMounts"],
            "volumes": deployment["volumes"],
            "resources": deployment["resources"],
            "namespace": NAMESPACE,
            "env": deployment["env"],
        }
    }


def _code_location_run(job_name: str) -> dg.DagsterRun:
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin

    deployment = _user_deployment()
    origin = JobPythonOrigin(
        job_name,
        RepositoryPythonOrigin(
            executable_path="/usr/local/bin/python",
            code_pointer=ModuleCodePointer("skyscript_assets.definitions", "defs", "/opt/skyscript"),
            container_image=f"{deployment['image']['repository']}:{deployment['image']['tag']}",
            container_context=_code_location_container_context(),
        ),
    )
    return dg.DagsterRun(job_name=job_name, run_id="fedcba9876543210", job_code_origin=origin)


def _run_pod_job(instance, run: dg.DagsterRun) -> dict:
    """The Job K8sRunLauncher.launch_run sends to the cluster for `run`."""
    from dagster._core.launcher import LaunchRunContext

    launcher = instance.run_launcher
    instance.add_run(run)
    with mock.patch.object(launcher, "_api_client") as api:
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return ApiClient().sanitize_for_serialization(api.create_namespaced_job_with_retries.call_args.kwargs["body"])


def _code_location_step_job(instance, job: dg.JobDefinition, op_name: str) -> dict:
    """test_k8s._step_job for a run launched from the chart's code server (its container context
    included, as in the cluster)."""
    run = _code_location_run(job.name)
    for_run = K8sContainerContext.create_for_run

    def create_for_run(dagster_run, run_launcher, include_run_tags):
        return for_run(run, run_launcher, include_run_tags)

    with mock.patch.object(K8sContainerContext, "create_for_run", staticmethod(create_for_run)):
        return _step_job(instance, job, op_name)


def _profile_defs(monkeypatch) -> dg.Definitions:
    for name, value in _user_code_env().items():
        monkeypatch.setenv(name, value)
    assets = [big_gpu_stage, plain_gpu_stage, cpu_stage]
    profile = build_profile(assets, "k8s")
    return dg.Definitions(assets=assets, jobs=profile.jobs, resources=profile.resources, executor=profile.executor)


@pytest.fixture
def deployment_pods(k8s_instance, monkeypatch) -> dict[str, dict]:  # noqa: F811
    """Every pod of the deployment, by role."""
    defs = _profile_defs(monkeypatch)
    gpu_pipeline = defs.resolve_job_def("gpu_pipeline")
    instance = k8s_instance.instance
    return {
        "lmdeploy": _render_lmdeploy()["Deployment"],
        **_dagster_chart_pods(),
        "run": _run_pod_job(instance, _code_location_run("drama_pipeline")),
        "step cpu_stage": _code_location_step_job(instance, defs.resolve_implicit_global_asset_job_def(), "cpu_stage"),
        "step big_gpu_stage": _code_location_step_job(instance, gpu_pipeline, "big_gpu_stage"),
        "step plain_gpu_stage": _code_location_step_job(instance, gpu_pipeline, "plain_gpu_stage"),
    }


@pytest.fixture
def bare_k8s_instance(tmp_path):
    """An instance whose K8sRunLauncher adds nothing to pods: what step pods get is k8s.py's alone."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump(
            {
                "run_launcher": {
                    "module": "dagster_k8s",
                    "class": "K8sRunLauncher",
                    "config": {
                        "instance_config_map": "dagster-instance",
                        "service_account_name": "dagster",
                        "job_namespace": NAMESPACE,
                    },
                }
            }
        )
    )
    with mock.patch("dagster_k8s.launcher.load_kubernetes_config"):
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance


def _container(manifest: dict) -> dict:
    return _pod_template(manifest)[1]["containers"][0]


# --- the checker -------------------------------------------------------------------------------


def _good_pod() -> dict:
    return _render_lmdeploy()["Deployment"]


def _spec(pod):
    return pod["spec"]["template"]["spec"]


def _sc(pod):
    return _spec(pod)["containers"][0]["securityContext"]


def _pod_sc(pod):
    return _spec(pod)["securityContext"]


BAD_PODS = {
    "host network": (lambda p: _spec(p).update(hostNetwork=True), "hostNetwork"),
    "host PID": (lambda p: _spec(p).update(hostPID=True), "hostPID"),
    "host IPC": (lambda p: _spec(p).update(hostIPC=True), "hostIPC"),
    "hostPath volume": (lambda p: _spec(p)["volumes"].append({"name": "root", "hostPath": {"path": "/"}}), "hostPath"),
    "nfs volume": (
        lambda p: _spec(p)["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "not allowed",
    ),
    "privileged": (lambda p: _sc(p).update(privileged=True), "privileged"),
    "privilege escalation unset": (lambda p: _sc(p).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    "privilege escalation": (lambda p: _sc(p).update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
    "root allowed on the container": (lambda p: _sc(p).update(runAsNonRoot=False), "runAsNonRoot"),
    "runAsNonRoot nowhere": (lambda p: (_sc(p).pop("runAsNonRoot"), _pod_sc(p).pop("runAsNonRoot")), "runAsNonRoot"),
    "uid 0 on the pod": (lambda p: _pod_sc(p).update(runAsUser=0), "runAsUser is 0"),
    "uid 0 on the container": (lambda p: _sc(p).update(runAsUser=0), "runAsUser is 0"),
    "a capability added": (lambda p: _sc(p)["capabilities"].update(add=["SYS_ADMIN"]), "SYS_ADMIN"),
    "capabilities kept": (lambda p: _sc(p).pop("capabilities"), "drop ALL"),
    "unconfined seccomp": (lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}), "Unconfined"),
    "no seccomp anywhere": (lambda p: (_sc(p).pop("seccompProfile"), _pod_sc(p).pop("seccompProfile")), "seccomp"),
    "host port": (lambda p: _spec(p)["containers"][0]["ports"][0].update(hostPort=23333), "hostPort"),
    "unmasked /proc": (lambda p: _sc(p).update(procMount="Unmasked"), "procMount"),
    "SELinux type": (lambda p: _sc(p).update(seLinuxOptions={"type": "spc_t"}), "seLinuxOptions"),
    "unsafe sysctl": (lambda p: _pod_sc(p).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "sysctl"),
    "AppArmor unconfined": (lambda p: _sc(p).update(appArmorProfile={"type": "Unconfined"}), "appArmorProfile"),
    "Windows host process": (lambda p: _pod_sc(p).update(windowsOptions={"hostProcess": True}), "hostProcess"),
    "an init container without a security context": (
        lambda p: _spec(p).update(initContainers=[{"name": "setup", "image": "busybox"}]),
        "initContainers[setup]",
    ),
}


def test_checker_passes_a_restricted_pod_and_allows_only_net_bind_service():
    pod = _good_pod()
    assert restricted_violations(pod) == []
    _sc(pod)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert restricted_violations(pod) == []


@pytest.mark.parametrize("name", list(BAD_PODS))
def test_checker_rejects_a_pod_that_breaks_the_standard(name):
    mutate, expected = BAD_PODS[name]
    pod = copy.deepcopy(_good_pod())
    mutate(pod)
    _validate(pod)  # still a valid manifest: only the standard refuses it
    violations = restricted_violations(pod)
    assert violations and any(expected in v for v in violations), violations


def test_hardening_check_rejects_a_writable_root_or_a_missing_scratch_dir():
    pod = _good_pod()
    assert hardening_violations(pod, writable=("/tmp", "/home/lmdeploy")) == []
    _sc(pod)["readOnlyRootFilesystem"] = False
    assert any("root filesystem is writable" in v for v in hardening_violations(pod))
    missing = hardening_violations(_good_pod(), writable=("/var/cache",))
    assert any("/var/cache is not a writable emptyDir" in v for v in missing)


# --- every pod of the deployment -----------------------------------------------------------------


@pytest.mark.postgres
def test_every_pod_of_the_deployment_meets_the_restricted_standard(deployment_pods):
    assert set(deployment_pods) == {
        "lmdeploy",
        "webserver",
        "daemon",
        "code-server",
        "run",
        "step cpu_stage",
        "step big_gpu_stage",
        "step plain_gpu_stage",
    }
    for role, manifest in deployment_pods.items():
        _validate(manifest)
        assert restricted_violations(manifest) == [], role
        writable = {
            "lmdeploy": ("/tmp", "/home/lmdeploy"),
            "webserver": ("/tmp", k8s_defs.DAGSTER_HOME),
            "daemon": ("/tmp", k8s_defs.DAGSTER_HOME),
        }.get(role, tuple(k8s_defs.WRITABLE_PATHS.values()))
        assert hardening_violations(manifest, writable) == [], role
    for role in ("run", "step cpu_stage", "step big_gpu_stage"):
        (container,) = _pod_template(deployment_pods[role])[1]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["DAGSTER_HOME"] == k8s_defs.DAGSTER_HOME  # where the writable emptyDir is
    # step pods never get an API token; run pods keep theirs (k8s_job_executor creates the step Jobs)
    assert _pod_template(deployment_pods["step cpu_stage"])[1]["automountServiceAccountToken"] is False
    assert _pod_template(deployment_pods["run"])[1]["automountServiceAccountToken"] is True


def test_k8s_module_alone_makes_step_pods_restricted(bare_k8s_instance, monkeypatch):
    defs = _profile_defs(monkeypatch)
    gpu_pipeline = defs.resolve_job_def("gpu_pipeline")
    steps = {
        "cpu_stage": _step_job(bare_k8s_instance, defs.resolve_implicit_global_asset_job_def(), "cpu_stage"),
        "big_gpu_stage": _step_job(bare_k8s_instance, gpu_pipeline, "big_gpu_stage"),
        "plain_gpu_stage": _step_job(bare_k8s_instance, gpu_pipeline, "plain_gpu_stage"),
    }
    for name, manifest in steps.items():
        _validate(manifest)
        assert restricted_violations(manifest) == [], name
        assert hardening_violations(manifest, tuple(k8s_defs.WRITABLE_PATHS.values())) == [], name
    assert _container(steps["cpu_stage"])["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}


def _snake(model, value):
    return k8s_snake_case_dict(model, value)


def test_values_and_dagster_yaml_give_run_pods_what_k8s_py_gives_step_pods():
    """dagster-k8s merges the run launcher's, the code location's and the executor's pod settings
    into each step pod and keeps one copy of identical list entries: so they must be identical."""
    values = _dagster_values()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    instance = yaml.safe_load((ROOT / "deployments" / "dagster.yaml").read_text())["run_launcher"]["config"]
    deployment = _user_deployment()
    pod_sc = _snake(k8s_client.V1PodSecurityContext, k8s_defs.POD_SECURITY_CONTEXT)
    container_sc = _snake(k8s_client.V1SecurityContext, k8s_defs.CONTAINER_SECURITY_CONTEXT)
    for source in (
        launcher["runK8sConfig"]["podSpecConfig"]["securityContext"],
        instance["run_k8s_config"]["pod_spec_config"]["securityContext"],
        deployment["podSecurityContext"],
        values["dagsterWebserver"]["podSecurityContext"],
        values["dagsterDaemon"]["podSecurityContext"],
    ):
        assert _snake(k8s_client.V1PodSecurityContext, source) == pod_sc
    for source in (
        launcher["runK8sConfig"]["containerConfig"]["securityContext"],
        instance["run_k8s_config"]["container_config"]["securityContext"],
        deployment["securityContext"],
        values["dagsterWebserver"]["securityContext"],
        values["dagsterDaemon"]["securityContext"],
    ):
        assert _snake(k8s_client.V1SecurityContext, source) == container_sc
    assert launcher["runK8sConfig"]["podSpecConfig"] == instance["run_k8s_config"]["pod_spec_config"]

    writable_volumes = [_snake(k8s_client.V1Volume, v) for v in k8s_defs.WRITABLE_VOLUMES]
    writable_mounts = [_snake(k8s_client.V1VolumeMount, m) for m in k8s_defs.WRITABLE_VOLUME_MOUNTS]
    assert [_snake(k8s_client.V1Volume, v) for v in deployment["volumes"]] == writable_volumes
    assert [_snake(k8s_client.V1VolumeMount, m) for m in deployment["volumeMounts"]] == writable_mounts
    for volumes, mounts in (
        (launcher["volumes"], launcher["volumeMounts"]),
        (instance["volumes"], instance["volume_mounts"]),
    ):
        assert [_snake(k8s_client.V1Volume, v) for v in volumes if v["name"] != "model-weights"] == writable_volumes
        assert [_snake(k8s_client.V1VolumeMount, m) for m in mounts if m["name"] != "model-weights"] == writable_mounts
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert all(_snake(k8s_client.V1Volume, v) in writable_volumes for v in values[component]["volumes"])
        assert {m["mountPath"] for m in values[component]["volumeMounts"]} == {"/tmp", k8s_defs.DAGSTER_HOME}


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_images_run_as_the_uid_the_pods_set(name):
    docker = _dockerfile(name)
    assert docker["USER"][-1] == f"{k8s_defs.RUN_AS_USER}:{k8s_defs.RUN_AS_GROUP}"
    run = " ".join(docker["RUN"])
    assert re.search(rf"groupadd --gid {k8s_defs.RUN_AS_GROUP} skyscript", run)
    uid, gid, home = k8s_defs.RUN_AS_USER, k8s_defs.RUN_AS_GROUP, k8s_defs.HOME
    assert re.search(rf"useradd --uid {uid} --gid {gid} --home-dir {home} ", run)
    env = " ".join(docker["ENV"])
    assert f"DAGSTER_HOME={k8s_defs.DAGSTER_HOME}" in env and f"HOME={k8s_defs.HOME}" in env
    assert _user_deployment()["podSecurityContext"]["runAsUser"] == uid


# --- NetworkPolicies ---------------------------------------------------------------------------


def _selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions, ANDed)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def _admits(policy: dict, labels: dict, port: int) -> bool:
    """Whether `policy` lets a pod of this namespace with `labels` connect to `port`."""
    for rule in policy["spec"].get("ingress") or []:
        peers = rule.get("from") or []
        ports = [p["port"] for p in rule.get("ports") or []]
        peer_ok = any(
            "namespaceSelector" not in peer and "ipBlock" not in peer and _selects(peer["podSelector"], labels)
            for peer in peers
        )
        if peer_ok and (not ports or port in ports):
            return True
    return False


def _labels(manifest: dict) -> dict:
    return _pod_template(manifest)[0]["labels"]


@pytest.mark.postgres
def test_only_run_and_step_pods_reach_the_mllm_and_only_dagster_reaches_postgres(deployment_pods):
    lmdeploy = _render_lmdeploy()
    policy, deployment = lmdeploy["NetworkPolicy"], lmdeploy["Deployment"]
    _validate(policy)
    port = _container(deployment)["ports"][0]["containerPort"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == []  # it calls nobody
    assert _selects(policy["spec"]["podSelector"], _labels(deployment))
    mllm_clients = {role for role, pod in deployment_pods.items() if _admits(policy, _labels(pod), port)}
    assert mllm_clients == {"run", "step cpu_stage", "step big_gpu_stage", "step plain_gpu_stage"}
    assert not _admits(policy, _labels(deployment_pods["run"]), port + 1)
    assert not _admits(policy, {"app.kubernetes.io/name": "dagster"}, port)  # a dagster label alone is not enough

    (postgres,) = _render_chart("network-policies", "skyscript-network-policies")
    _validate(postgres)
    assert postgres["kind"] == "NetworkPolicy" and postgres["spec"]["policyTypes"] == ["Ingress"]
    values = yaml.safe_load((ROOT / "helm" / "network-policies" / "values.yaml").read_text())["postgres"]
    assert postgres["spec"]["podSelector"] == values["podSelector"]
    postgres_labels = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "postgres"}
    assert _selects(postgres["spec"]["podSelector"], postgres_labels)
    assert not _selects(postgres["spec"]["podSelector"], _labels(deployment))
    pg_port = _dagster_values()["postgresql"]["service"]["port"]
    catalog_clients = {role for role, pod in deployment_pods.items() if _admits(postgres, _labels(pod), pg_port)}
    assert catalog_clients == set(deployment_pods) - {"lmdeploy"}
    # the lmdeploy chart's own policy can be turned off, and Postgres's too
    assert "NetworkPolicy" not in _render_lmdeploy({"networkPolicy": {"enabled": False}})
    assert _render_chart("network-policies", "skyscript-network-policies", {"postgres": {"enabled": False}}) == []


def test_network_policies_chart_passes_helm_lint():
    import helm_python as helm

    report = helm.lint(ROOT / "helm" / "network-policies", strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


# --- the MLLM API key: one Secret --------------------------------------------------------------


def _secret_ref(container: dict, name: str) -> dict:
    (entry,) = [e for e in container.get("env") or [] if e["name"] == name]
    return entry["valueFrom"]["secretKeyRef"]


@pytest.mark.postgres
def test_the_mllm_api_key_comes_from_one_secret_at_both_ends(deployment_pods, monkeypatch):
    server = _container(_render_lmdeploy()["Deployment"])  # chart defaults: authenticated
    key_ref = _secret_ref(server, "LMDEPLOY_API_KEY")
    assert server["args"][server["args"].index("--api-keys") + 1] == "$(LMDEPLOY_API_KEY)"
    # lmdeploy asks every /v1 route for the key; the probes use the one route that does not
    assert server["readinessProbe"]["httpGet"]["path"] == server["livenessProbe"]["httpGet"]["path"] == "/health"
    lmdeploy_values = yaml.safe_load((ROOT / "helm" / "lmdeploy" / "values.yaml").read_text())
    assert key_ref == {"name": lmdeploy_values["apiKeySecret"], "key": lmdeploy_values["apiKeySecretKey"]}

    monkeypatch.setenv("SKYSCRIPT_PROFILE", "k8s")
    api_key_env = build_profile([drama_manifest], "k8s").resources["mllm"].api_key_env
    assert api_key_env == "OPENAI_API_KEY"
    for role in ("run", "step cpu_stage", "step big_gpu_stage", "step plain_gpu_stage"):
        container = _container(deployment_pods[role])
        assert _secret_ref(container, api_key_env) == key_ref, role
        assert [e["name"] for e in container["env"]].count(api_key_env) == 1, role
    # the key is never spelled out: no plain value for it anywhere in the values
    for path in ("helm/dagster/values.yaml", "deployments/dagster.yaml", "helm/lmdeploy/values.yaml"):
        for document in yaml.safe_load_all((ROOT / path).read_text()):
            assert not re.search(r"OPENAI_API_KEY\W+value\W", str(document))
    # documented where the values are explained
    readme = (ROOT / "helm" / "README.md").read_text()
    assert key_ref["name"] in readme and key_ref["key"] in readme and api_key_env in readme
    # opting out of authentication is explicit, and then the key is gone from the server
    open_server = _container(_render_lmdeploy({"apiKeySecret": ""})["Deployment"])
    assert "--api-keys" not in open_server["args"]
    assert "LMDEPLOY_API_KEY" not in {e["name"] for e in open_server["env"]}


# --- resources ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_step_pods_request_cpu_and_memory_and_gpu_pods_keep_their_gpus(deployment_pods):
    env = _user_code_env()
    cpu = _container(deployment_pods["step cpu_stage"])["resources"]
    assert cpu["requests"] == {"cpu": env["SKYSCRIPT_STEP_CPU"], "memory": env["SKYSCRIPT_STEP_MEMORY"]}
    assert cpu["limits"] == {"memory": env["SKYSCRIPT_STEP_MEMORY"]} and "nvidia.com/gpu" not in cpu["limits"]
    big = _container(deployment_pods["step big_gpu_stage"])["resources"]
    assert big["limits"] == {"nvidia.com/gpu": "2", "memory": "48Gi"}
    assert big["requests"] == {"cpu": env["SKYSCRIPT_STEP_CPU"], "memory": "48Gi"}
    plain = _container(deployment_pods["step plain_gpu_stage"])["resources"]
    assert plain["limits"] == {
        "nvidia.com/gpu": env["SKYSCRIPT_GPUS_PER_STEP"],
        "memory": env["SKYSCRIPT_GPU_STEP_MEMORY"],
    }
    assert plain["requests"]["cpu"] == env["SKYSCRIPT_STEP_CPU"]
    assert _container(deployment_pods["lmdeploy"])["resources"]["requests"]["cpu"]


def test_step_pod_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SKYSCRIPT_STEP_CPU", "500m")
    monkeypatch.setenv("SKYSCRIPT_STEP_MEMORY", "3Gi")
    config = k8s_defs.step_k8s_config(k8s_defs.GpuPlacement.from_environment())
    assert config["container_config"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "3Gi"},
        "limits": {"memory": "3Gi"},
    }
    monkeypatch.delenv("SKYSCRIPT_STEP_CPU")
    monkeypatch.delenv("SKYSCRIPT_STEP_MEMORY")
    assert k8s_defs.GpuPlacement.from_environment().step_cpu == k8s_defs.DEFAULT_STEP_CPU


# --- the gpu pool limit: one figure ------------------------------------------------------------

GPU_POOL_LIMIT = 4  # the GPU step pods of docs/scale.md


def test_gpu_pool_limit_is_one_figure_in_the_deployment_files():
    values = _dagster_values()
    instance = yaml.safe_load((ROOT / "deployments" / "dagster.yaml").read_text())
    assert values["concurrency"]["pools"]["defaultLimit"] == GPU_POOL_LIMIT
    assert instance["concurrency"]["pools"]["default_limit"] == GPU_POOL_LIMIT


def _pool_figures(text: str) -> list[int]:
    """Every figure a document gives for the `gpu` pool limit."""
    patterns = [
        r"concurrency set gpu (\d+)",
        r"defaultLimit:?\s*`?(\d+)",
        r"default_limit:?\s*`?(\d+)",
        r"`gpu` pool limit[^.\n]*?\((\d+) here\)",
        r"pool limit[^.\n]*?\bis (\d+)\b",
    ]
    return [int(m) for pattern in patterns for m in re.findall(pattern, text)]


def test_gpu_pool_limit_is_the_same_figure_in_the_docs():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "helm" / "README.md"]
    figures = {str(path.relative_to(ROOT)): _pool_figures(path.read_text()) for path in documents if path.exists()}
    wrong = {path: found for path, found in figures.items() if any(f != GPU_POOL_LIMIT for f in found)}
    assert wrong == {}, f"the gpu pool limit is {GPU_POOL_LIMIT} (helm/dagster/values.yaml, deployments/dagster.yaml)"
