"""The node's view of the release repository: python-tuf's ngclient, nothing hand-rolled.

Each check builds a fresh `Updater` whose trust starts from the root shipped with the
node's install (`bootstrap=`), never from the writable cache. Python-tuf's refusals are
translated into `UpdateRefused` with a short reason (signature, expired, metadata_version,
hash_mismatch, oversize...) for the install report; a network failure is `Unreachable`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from cityedge.protocol.errors import ReleaseError, UpdateRefused
from cityedge.protocol.release import Latest, Manifest, latest_path, target_path

__all__ = ["HttpsFetcher", "ReleaseClient", "Unreachable", "refusal_of"]


class Unreachable(ReleaseError):
    """The repository could not be reached; the next check tries again."""


class HttpsFetcher(FetcherInterface):
    """python-tuf's fetcher seam over httpx, trusting the district CA (or the system store)."""

    def __init__(self, cafile: Path | None = None, timeout_s: float = 30.0) -> None:
        verify: ssl.SSLContext | bool = True
        if cafile is not None:
            verify = ssl.create_default_context(cafile=str(cafile))
        self._client = httpx.Client(verify=verify, timeout=timeout_s)

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            request = self._client.build_request("GET", url)
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise tuf_errors.DownloadError(f"{url}: {exc}") from exc
        if response.status_code >= 400:
            response.close()
            raise tuf_errors.DownloadHTTPError(f"{url}: HTTP {response.status_code}", response.status_code)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(64 * 1024)
        except httpx.HTTPError as exc:
            raise tuf_errors.DownloadError(str(exc)) from exc
        finally:
            response.close()


_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (tuf_errors.UnsignedMetadataError, "signature"),
    (tuf_errors.ExpiredMetadataError, "expired"),
    (tuf_errors.BadVersionNumberError, "metadata_version"),
    (tuf_errors.LengthOrHashMismatchError, "hash_mismatch"),
    (tuf_errors.DownloadLengthMismatchError, "oversize"),
    (tuf_errors.RepositoryError, "metadata"),
)


def refusal_of(exc: Exception) -> UpdateRefused:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return UpdateRefused(reason, f"{type(exc).__name__}: {exc}")
    return UpdateRefused("metadata", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Offer:
    channel: str
    version: str
    manifest: Manifest
    target: TargetFile


class ReleaseClient:
    def __init__(
        self,
        repository_url: str,
        trusted_root: Path,
        cache_dir: Path,
        fetcher: FetcherInterface,
        config: UpdaterConfig | None = None,
    ) -> None:
        self.base = repository_url.rstrip("/")
        self.trusted_root = trusted_root
        self.cache_dir = cache_dir
        self.fetcher = fetcher
        self.config = config or UpdaterConfig()

    def _updater(self) -> Updater:
        (self.cache_dir / "metadata").mkdir(parents=True, exist_ok=True)
        (self.cache_dir / "downloads").mkdir(parents=True, exist_ok=True)
        return Updater(
            str(self.cache_dir / "metadata"),
            f"{self.base}/metadata/",
            str(self.cache_dir / "downloads"),
            f"{self.base}/targets/",
            self.fetcher,
            self.config,
            bootstrap=self.trusted_root.read_bytes(),
        )

    def offer(self, channel: str, version: str | None) -> Offer | None:
        """The release to consider: `version` on `channel`, or the channel's latest."""
        with _translated():
            updater = self._updater()
            updater.refresh()
            if version is None:
                info = updater.get_targetinfo(latest_path(channel))
                if info is None:
                    return None
                path = updater.download_target(info)
                version = msgspec.json.decode(Path(path).read_bytes(), type=Latest).version
            info = updater.get_targetinfo(target_path(channel, version))
        if info is None:
            raise UpdateRefused("not_listed", f"release {version} is not listed on channel {channel}")
        custom = info.custom.get("cityedge") if isinstance(info.custom, dict) else None
        try:
            manifest = msgspec.convert(custom, Manifest)
        except (msgspec.ValidationError, TypeError) as exc:
            raise UpdateRefused(
                "manifest", f"listing of {version} carries no valid manifest: {exc}"
            ) from None
        if manifest.version != version:
            raise UpdateRefused("manifest", f"listing {info.path} names version {manifest.version}")
        return Offer(channel, version, manifest, info)

    def download(self, offer: Offer) -> Path:
        """Download and verify (length and SHA-256 from signed metadata) into the cache."""
        with _translated():
            updater = self._updater()
            updater.refresh()
            info = updater.get_targetinfo(offer.target.path)
            if info is None or info.hashes != offer.target.hashes:
                raise UpdateRefused("metadata", f"{offer.target.path} changed between check and download")
            cached = updater.find_cached_target(info)
            return Path(cached or updater.download_target(info))


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (tuf_errors.DownloadHTTPError, tuf_errors.SlowRetrievalError) as exc:
        raise Unreachable(f"release repository unreachable: {exc}") from exc
    except tuf_errors.DownloadError as exc:
        if type(exc) is tuf_errors.DownloadError:
            raise Unreachable(f"release repository unreachable: {exc}") from exc
        raise refusal_of(exc) from exc
    except tuf_errors.RepositoryError as exc:
        raise refusal_of(exc) from exc
