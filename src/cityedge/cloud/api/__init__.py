"""The control plane's HTTP API: a FastAPI factory, one router per resource, an mTLS-aware server."""

from cityedge.cloud.api.app import create_app
from cityedge.cloud.api.deps import ApiDeps
from cityedge.cloud.api.server import ApiServerConfig, MtlsH11Protocol, uvicorn_config

__all__ = ["ApiDeps", "ApiServerConfig", "MtlsH11Protocol", "create_app", "uvicorn_config"]
