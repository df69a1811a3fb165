"""The K3s manifests in `deploy/k8s/`: render an overlay (kustomize, through kubectl) and
check what every cityedge pod must be: requests and limits on every container, non-root, a
read-only root filesystem, no added capabilities, and the image pinned by digest.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from cityedge.protocol.errors import ConfigError

__all__ = [
    "OVERLAYS",
    "check_stream",
    "documents",
    "k8s_root",
    "overlay_dir",
    "pin_image",
    "pod_problems",
    "pods",
    "render",
]

OVERLAYS = ("edge", "cloud", "dev")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def k8s_root(start: Path | None = None) -> Path:
    """`deploy/k8s` of the checkout that holds `start` (default: the working directory)."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / "deploy" / "k8s" / "overlays").is_dir():
            return folder / "deploy" / "k8s"
    raise ConfigError(f"no deploy/k8s/overlays above {here}: run this from a cityedge checkout")


def overlay_dir(overlay: str, root: Path | None = None) -> Path:
    if overlay not in OVERLAYS:
        raise ConfigError(f"overlay {overlay!r}: choose one of {', '.join(OVERLAYS)}")
    return (root or k8s_root()) / "overlays" / overlay


def render(overlay: str, root: Path | None = None) -> str:
    """The overlay's manifests as one YAML stream (`kubectl kustomize`)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ConfigError("kubectl is needed to render the manifests (its built-in kustomize)")
    folder = overlay_dir(overlay, root)
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"kustomize {folder}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def documents(stream: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(stream) if d]


def pods(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    for doc in docs:
        spec = doc.get("spec") or {}
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if template and "spec" in template:
            yield f"{doc['kind']}/{doc['metadata']['name']}", template["spec"]


def pod_problems(name: str, pod: dict[str, Any]) -> list[str]:
    """What this pod spec lacks of the rules above, one sentence each."""
    pod_ctx = pod.get("securityContext") or {}
    return [
        f"{name}/{c['name']}: {problem}"
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]
        for problem in _container_problems(c, {**pod_ctx, **(c.get("securityContext") or {})})
    ]


def _container_problems(c: dict[str, Any], ctx: dict[str, Any]) -> list[str]:
    res = c.get("resources") or {}
    problems = [
        f"no cpu and memory {part}"
        for part in ("requests", "limits")
        if not {"cpu", "memory"} <= set(res.get(part) or {})
    ]
    caps = ctx.get("capabilities") or {}
    image = str(c.get("image", ""))
    checks = (
        (not ctx.get("runAsNonRoot") or int(ctx.get("runAsUser", 0)) == 0,
         "may run as root (runAsNonRoot and a non-zero runAsUser)"),
        (not ctx.get("readOnlyRootFilesystem"), "root filesystem is writable"),
        (ctx.get("allowPrivilegeEscalation", True) or ctx.get("privileged"),
         "privilege escalation is allowed"),
        ("ALL" not in caps.get("drop", []) or bool(caps.get("add")), "capabilities are not all dropped"),
        (not _DIGEST.search(image) or image.split("@", maxsplit=1)[0].endswith(":latest"),
         f"image {image!r} is not pinned by digest"),
    )  # fmt: skip
    return problems + [sentence for failed, sentence in checks if failed]


def check_stream(stream: str, what: str) -> None:
    """Raise a ConfigError listing every pod rule the rendered stream breaks."""
    problems = [p for name, pod in pods(documents(stream)) for p in pod_problems(name, pod)]
    if problems:
        raise ConfigError(f"{what}: " + "; ".join(problems))


_IMAGE_ENTRY = re.compile(r"(?m)^(  - name: cityedge\n    newName: )\S+(\n    digest: )\S+$")


def pin_image(image: str, root: Path | None = None) -> list[Path]:
    """Set the `cityedge` image (name and digest) in every overlay's kustomization.yaml."""
    name, sep, digest = image.partition("@")
    if not sep or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or not name:
        raise ConfigError(f"image {image!r}: give it by digest, NAME@sha256:<64 hex digits>")
    changed = []
    for overlay in OVERLAYS:
        path = overlay_dir(overlay, root) / "kustomization.yaml"
        text = path.read_text()
        new, n = _IMAGE_ENTRY.subn(lambda m: f"{m[1]}{name}{m[2]}{digest}", text)
        if n != 1:
            raise ConfigError(f"{path}: expected one `images:` entry for cityedge (name, newName, digest)")
        path.write_text(new)
        changed.append(path)
    return changed
