"""Type-check the GitOps example (`deploy/gitops/flux/`): Flux's GitRepository
(source.toolkit.fluxcd.io/v1) and Kustomization (kustomize.toolkit.fluxcd.io/v1), with the
fields of Flux's API reference and unknown fields refused, plus what a type cannot say: each
Kustomization's source exists and its path is an overlay of this checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityedge.protocol.errors import ConfigError

__all__ = ["GitRepository", "Kustomization", "check_flux"]

Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
Name = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Strict):
    name: Name
    namespace: Name
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class LocalRef(_Strict):
    name: Name


class GitRef(_Strict):
    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None


class GitRepositorySpec(_Strict):
    url: Annotated[str, Field(pattern=r"^(http|https|ssh)://.*$")]
    interval: Duration
    ref: GitRef | None = None
    secret_ref: LocalRef | None = Field(None, alias="secretRef")
    timeout: Duration | None = None
    ignore: str | None = None
    suspend: bool | None = None


class GitRepository(_Strict):
    api_version: Literal["source.toolkit.fluxcd.io/v1"] = Field(alias="apiVersion")
    kind: Literal["GitRepository"]
    metadata: Metadata
    spec: GitRepositorySpec


class SourceRef(_Strict):
    kind: Literal["GitRepository", "OCIRepository", "Bucket"]
    name: Name
    namespace: Name | None = None


class DependsOn(_Strict):
    name: Name
    namespace: Name | None = None


class HealthCheck(_Strict):
    api_version: str | None = Field(None, alias="apiVersion")
    kind: str
    name: Name
    namespace: Name | None = None


class Decryption(_Strict):
    provider: Literal["sops"]
    secret_ref: LocalRef | None = Field(None, alias="secretRef")


class KustomizationSpec(_Strict):
    interval: Duration
    source_ref: SourceRef = Field(alias="sourceRef")
    path: Annotated[str, Field(pattern=r"^\./")] = "./"
    prune: bool
    retry_interval: Duration | None = Field(None, alias="retryInterval")
    target_namespace: Name | None = Field(None, alias="targetNamespace")
    timeout: Duration | None = None
    wait: bool | None = None
    force: bool | None = None
    suspend: bool | None = None
    depends_on: list[DependsOn] = Field([], alias="dependsOn")
    health_checks: list[HealthCheck] = Field([], alias="healthChecks")
    decryption: Decryption | None = None
    service_account_name: Name | None = Field(None, alias="serviceAccountName")


class Kustomization(_Strict):
    api_version: Literal["kustomize.toolkit.fluxcd.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Kustomization"]
    metadata: Metadata
    spec: KustomizationSpec


_KINDS: dict[str, type[_Strict]] = {"GitRepository": GitRepository, "Kustomization": Kustomization}


def check_flux(folder: Path, checkout: Path) -> list[GitRepository | Kustomization]:
    """Every object in `folder/*.yaml`, typed; a ConfigError names the file and the field."""
    objects: list[Any] = []
    for path in sorted(folder.glob("*.yaml")):
        for index, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            model = _KINDS.get(str(doc.get("kind")))
            if model is None:
                raise ConfigError(
                    f"{path} document {index + 1}: kind {doc.get('kind')!r} is not a Flux object"
                )
            try:
                objects.append(model.model_validate(doc))
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"{path} document {index + 1}: {field}: {err['msg']}") from None
    _check_references(objects, checkout)
    return objects


def _check_references(objects: list[Any], checkout: Path) -> None:
    """Each Kustomization's source is defined here and its path is an overlay of the checkout."""
    sources = {(o.metadata.namespace, o.metadata.name) for o in objects if isinstance(o, GitRepository)}
    for o in objects:
        if not isinstance(o, Kustomization):
            continue
        ref = o.spec.source_ref
        if (ref.namespace or o.metadata.namespace, ref.name) not in sources:
            raise ConfigError(f"Kustomization {o.metadata.name}: source {ref.kind}/{ref.name} is not defined")
        if not (checkout / o.spec.path / "kustomization.yaml").is_file():
            raise ConfigError(f"Kustomization {o.metadata.name}: {o.spec.path} has no kustomization.yaml")
