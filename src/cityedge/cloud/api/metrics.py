"""`GET /metrics` and the identity metrics, computed at scrape time: CRL freshness and
certificate expiry (devices and services).

`cityedge_crl_stale` is the alert input: 1 when the CRL is past nextUpdate (brokers then
refuse every client) or missing; the API re-publishes well before that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cityedge.cloud.api.deps import ApiDeps, deps_of
from cityedge.cloud.registry import Registry

__all__ = ["IdentityCollector", "identity_registry", "router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(deps: ApiDeps = Depends(deps_of)) -> Response:
    # A route, not a mounted app: Prometheus scrapes /metrics and gets 200, not a 307 to /metrics/.
    return Response(generate_latest(deps.metrics), media_type=CONTENT_TYPE_LATEST)


class IdentityCollector(Collector):
    def __init__(self, registry: Registry, clock: Callable[[], datetime]) -> None:
        self.registry = registry
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self.registry.ca_status(self.clock())
        crl = status["crl"]
        yield GaugeMetricFamily(
            "cityedge_crl_stale", "1 when the CRL is past nextUpdate or missing", value=int(crl["alert"])
        )
        nxt = crl["next_update"]
        left = (datetime.fromisoformat(nxt) - self.clock()).total_seconds() if nxt else 0.0
        yield GaugeMetricFamily(
            "cityedge_crl_next_update_seconds", "Seconds until the CRL's nextUpdate", value=left
        )
        certs = GaugeMetricFamily(
            "cityedge_device_cert_expiry_seconds",
            "Seconds left on each device's newest live certificate",
            labels=["device"],
        )
        newest: dict[str, float] = {}
        for cert in status["certificates"]:
            newest[cert["device_id"]] = max(newest.get(cert["device_id"], 0.0), cert["days_left"])
        for device, days in sorted(newest.items()):
            certs.add_metric([device], days * 86400)  # base unit: promtool refuses "days"
        yield certs
        services = GaugeMetricFamily(
            "cityedge_service_cert_expiry_seconds",
            "Seconds left on each service's newest live certificate (renew with `cityedge ca renew`)",
            labels=["service", "profile"],
        )
        for cert in status["services"]:
            services.add_metric([cert["device_id"], cert["profile"]], cert["days_left"] * 86400)
        yield services


def identity_registry(registry: Registry, clock: Callable[[], datetime]) -> CollectorRegistry:
    metrics = CollectorRegistry()
    metrics.register(IdentityCollector(registry, clock))
    return metrics
