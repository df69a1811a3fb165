"""The K3s manifests: every overlay renders; every rendered object validates strictly against
Kubernetes 1.31's schemas (kubernetes-validate); checkov's Kubernetes checks pass (skips are
named and justified in the manifests); every pod has requests and limits, runs as non-root
on a read-only root filesystem, and pulls its image by digest; the Flux objects type-check;
the Dockerfile passes hadolint and keeps the same points itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

from cityedge.deploy.gitops import Kustomization, check_flux
from cityedge.deploy.manifests import OVERLAYS, check_stream, documents, pin_image, pod_problems, pods, render
from cityedge.edge.config import EdgeConfig
from cityedge.protocol.errors import ConfigError
from tests.support.services import require
from tests.support.stack import cli

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.31.0"


@cache
def rendered(overlay: str) -> str:
    require(shutil.which("kubectl") is not None, "kubectl (its built-in kustomize renders the overlays)")
    return render(overlay, K8S)


@cache
def tools() -> Path:
    """The checkers' venv (deploy/tools.sh); CI makes it, a laptop may not have it yet."""
    env = os.environ.get("CITYEDGE_DEPLOY_TOOLS")
    done = subprocess.run(
        [str(ROOT / "deploy" / "tools.sh")], capture_output=True, text=True, check=False,
        env={**os.environ, **({"CITYEDGE_DEPLOY_TOOLS": env} if env else {})},
    )  # fmt: skip
    require(done.returncode == 0, f"deploy/tools.sh (checkov, kubernetes-validate, hadolint): {done.stderr}")
    return Path(done.stdout.strip())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_and_every_pod_keeps_the_rules(overlay: str) -> None:
    docs = documents(rendered(overlay))
    workloads = dict(pods(docs))
    assert workloads, f"{overlay} renders no workload"
    for name, pod in workloads.items():
        assert pod_problems(name, pod) == []
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"])
            assert re.fullmatch(r"[a-z0-9.\-/]+@sha256:[0-9a-f]{64}", c["image"]), c["image"]
            assert ":latest" not in c["image"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
        assert pod.get("automountServiceAccountToken") is False
    kinds = {d["kind"] for d in docs}
    assert "NetworkPolicy" in kinds and all(d["metadata"].get("namespace", "") != "default" for d in docs)


def test_the_edge_overlay_runs_one_agent_per_labelled_edge_node_with_probes_and_the_local_broker() -> None:
    [agent] = [d for d in documents(rendered("edge")) if d["kind"] == "DaemonSet"]
    pod = agent["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cityedge.io/role": "edge"}
    assert {"key": "cityedge.io/edge", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"agent", "mosquitto"}
    assert containers["agent"]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert containers["agent"]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    host = {v["name"]: v for v in pod["volumes"]}["node-home"]["hostPath"]
    assert host["path"] == "/var/lib/cityedge"
    sizing = yaml.safe_load((K8S / "overlays" / "edge" / "sizing.yaml").read_text())
    expected = sizing["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert containers["agent"]["resources"] == expected  # the measured sizing is what deploys


def test_the_cloud_overlay_names_one_broker_identity_per_ingest_replica() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(rendered("cloud"))}
    ingest = docs[("StatefulSet", "cityedge-ingest")]
    broker = docs[("StatefulSet", "cityedge-broker")]
    replicas = ingest["spec"]["replicas"]
    args = broker["spec"]["template"]["spec"]["initContainers"][0]["args"]
    identities = [a.split("=", 1)[1] for a in args if a.startswith("--ingest-identity=")]
    assert identities == [f"cityedge-ingest-{i}" for i in range(replicas)]
    assert ("PodDisruptionBudget", "cityedge-ingest") in docs
    assert docs[("NetworkPolicy", "default-deny")]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_strictly_against_kubernetes_schemas(
    overlay: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered(overlay))
    done = subprocess.run(
        [str(tools() / "kubernetes-validate"), "--strict", "-k", KUBERNETES, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "INFO" in done.stdout and "ERROR" not in done.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkovs_kubernetes_checks_pass_and_every_skip_is_justified(overlay: str, tmp_path: Path) -> None:
    (tmp_path / "manifests.yaml").write_text(rendered(overlay))
    done = subprocess.run(
        [str(tools() / "checkov"), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download",
         "--compact", "-o", "json"],
        capture_output=True, text=True, check=False, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    report = json.loads(done.stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == [] and done.returncode == 0
    assert report["summary"]["passed"] > 50
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped["check_id"]


def test_a_pod_breaking_the_rules_is_named_with_each_problem() -> None:
    pod = {"containers": [{"name": "x", "image": "cityedge:latest", "securityContext": {}}]}
    problems = pod_problems("DaemonSet/bad", pod)
    assert len(problems) == 7 and all(p.startswith("DaemonSet/bad/x: ") for p in problems)
    stream = yaml.safe_dump(
        {"kind": "DaemonSet", "metadata": {"name": "bad"}, "spec": {"template": {"spec": pod}}}
    )
    with pytest.raises(ConfigError, match="image 'cityedge:latest' is not pinned by digest"):
        check_stream(stream, "test")


def test_the_node_configs_shipped_in_the_overlays_are_valid_agent_configs() -> None:
    configs = sorted(K8S.glob("overlays/*/nodes/*.yaml"))
    assert configs
    for path in configs:
        cfg = EdgeConfig.model_validate(yaml.safe_load(path.read_text()))
        assert cfg.node_id == path.stem and cfg.health is not None and cfg.health.host == "0.0.0.0"


def test_the_flux_objects_type_check_and_point_at_real_overlays(tmp_path: Path) -> None:
    objects = check_flux(ROOT / "deploy" / "gitops" / "flux", ROOT)
    paths = sorted(o.spec.path for o in objects if isinstance(o, Kustomization))
    assert paths == ["./deploy/k8s/overlays/cloud", "./deploy/k8s/overlays/edge"]
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "deploy" / "gitops" / "flux" / "district.yaml").read_text()
    bad.write_text(text.replace("prune: true", "prune: yes please", 1))
    with pytest.raises(ConfigError, match=r"bad.yaml document 2: spec.prune"):
        check_flux(tmp_path, ROOT)
    bad.write_text(text.replace("wait: true", "wait: true\n  waitFor: everything", 1))
    with pytest.raises(ConfigError, match=r"spec.waitFor: Extra inputs are not permitted"):
        check_flux(tmp_path, ROOT)


def test_pinning_a_digest_updates_every_overlay(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    digest = "sha256:" + "ab" * 32
    changed = pin_image(f"registry.example/city/cityedge@{digest}", copy)
    assert len(changed) == 3
    assert all(f"digest: {digest}" in p.read_text() for p in changed)
    with pytest.raises(ConfigError, match="by digest"):
        pin_image("registry.example/city/cityedge:1.0", copy)


def test_render_prints_the_overlay() -> None:
    require(shutil.which("kubectl") is not None, "kubectl")
    done = cli("deploy", "render", "--overlay", "edge")
    assert "kind: DaemonSet" in done.stdout and "@sha256:" in done.stdout


def test_the_dockerfile_passes_hadolint_and_keeps_the_points_itself() -> None:
    dockerfile = ROOT / "deploy" / "Dockerfile"
    done = subprocess.run(
        [str(tools() / "hadolint"), str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = dockerfile.read_text()
    froms = re.findall(r"(?m)^FROM\s+(\S+)", text)
    assert froms and all(f == "${BASE_IMAGE}" for f in froms)  # the content-tagged base only
    assert re.search(r"(?m)^ARG BASE_IMAGE$", text)  # no default: build-image.sh must pass it
    users = re.findall(r"(?m)^USER\s+(\S+)", text)
    assert users == ["10001:10001"]  # the last word: non-root
    assert "latest" not in text
    script = (ROOT / "deploy" / "build-image.sh").read_text()
    assert 'tag="cityedge/base:$suite-$version-$digest"' in script  # exact version + content hash
    lock = (ROOT / "deploy" / "requirements.lock").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9_.\-]+==\S+ --hash=sha256:[0-9a-f]{64}", p) for p in pins)
    final = text.rsplit("FROM ", 1)[1]
    assert "pip" not in final.split("COPY --from=build", 1)[0] and "gcc" not in final


def test_the_image_lock_pins_every_dependency_the_node_and_the_control_plane_declare() -> None:
    # The image installs cityedge with --no-deps from the lock's wheels: a dependency added to
    # pyproject.toml but not locked is missing in the container (`deploy/build-image.sh lock`).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["edge"]]
    wanted += project["optional-dependencies"]["cloud"]

    def norm(name: str) -> str:  # PEP 503: case, '-', '_' and '.' do not matter
        return re.sub(r"[-_.]+", "-", name).lower()

    names = {norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in wanted}
    lock = (ROOT / "deploy" / "requirements.lock").read_text().splitlines()
    locked = {norm(line.split("==")[0]) for line in lock if "==" in line}
    assert names - locked == set(), "run deploy/build-image.sh lock: not in deploy/requirements.lock"
