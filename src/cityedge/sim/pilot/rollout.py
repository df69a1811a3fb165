"""The spec's `rollout`: publish a release mid-run and roll it out over the pilot's nodes.

A thread waits until `at` seconds into the run, then calls the control plane's own
`publish_and_roll_out`: the bundle is published on canary in the pilot's release repository
(served at the API's `/tuf`), notices go out on each node's `down/ota` through the cloud
broker (as the `control-plane` service identity), and the waves advance on the install
reports the nodes' outboxes delivered to the store (`ota` stream). Every step is written to
the control plane's audit log. Afterwards each node's OTA state is read from its supervisor.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cityedge.protocol.spec_model import TAIL_S
from cityedge.sim.pilot.stack import DISTRICT, Stack

__all__ = ["PilotRollout"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0


class PilotRollout:
    def __init__(self, stack: Stack, start_at: float) -> None:
        assert stack.spec.rollout is not None and stack.releases is not None
        self.stack = stack
        self.rollout = stack.spec.rollout
        self.start_at = start_at
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.published_at: float | None = None
        self.ended_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pilot-rollout", daemon=True)

    def start(self) -> PilotRollout:
        self._thread.start()
        return self

    def _client(self) -> Any:
        from cityedge.transport import client_tls_context, make_client

        client = make_client("control-plane", self.stack.protocol, persistent=False)
        client.tls_set_context(client_tls_context(self.stack._tls("control-plane"), "control plane tls"))
        client.connect("127.0.0.1", self.stack.broker_port)
        client.loop_start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        return client

    def _run(self) -> None:
        try:
            if self._stop.wait(max(0.0, self.start_at + self.rollout.at_s - time.time())):
                return
            client = self._client()
            try:
                self.result = self._roll_out(client)
            finally:
                client.disconnect()
                client.loop_stop()
        except Exception as exc:  # reported as the rollout's failure, with the run's other figures
            log.exception("the pilot's rollout failed")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended_at = time.time()

    def _roll_out(self, client: Any) -> dict[str, Any]:
        from cityedge.cloud.releases.driver import latest_reports, publish_and_roll_out
        from cityedge.cloud.releases.keys import load_signers
        from cityedge.cloud.releases.notify import mqtt_notifier
        from cityedge.cloud.releases.rollout import Policy
        from cityedge.sim.pilot.releases import fleet

        stack, releases = self.stack, self.stack.releases
        nodes = fleet(list(stack.agents), self.rollout)
        canary = tuple(n for n, accepts in nodes.items() if accepts[0] == "canary")

        def reports() -> dict[str, tuple[str, str, str]]:
            return latest_reports((r.node, r.body) for r in stack.store.records(stream="ota"))

        self.published_at = time.time()
        return publish_and_roll_out(
            releases.directory,
            releases.bundle,
            nodes,
            mqtt_notifier(client, DISTRICT),
            reports,
            stable_signers=load_signers(list(releases.release_managers[:2])),
            rollout_policy=Policy(canary_nodes=canary, soak_s=self.rollout.soak_s),
            timeout_s=max(1.0, self.start_at + self.stack.spec.run_s - TAIL_S - time.time()),
            poll_s=0.5,
            audit=lambda action, target, detail: stack.auth.audit("pilot", action, target, "ok", detail),
        )

    def finish(self, timeout_s: float) -> dict[str, Any]:
        """Wait for the rollout to end, then collect what the judge needs: the rollout as the
        control plane saw it, each node's OTA state, and every install report in the store."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._stop.set()
            self.error = self.error or f"the rollout was still running {timeout_s:g} s after the scenes ended"
        from cityedge.cloud.releases.bundle import inspect

        nodes = {name: proc.call("ota_status", timeout=30.0) for name, proc in self.stack.agents.items()}
        reports = [
            {
                "node": r.node,
                "kind": r.kind,
                "at": r.ts.timestamp(),
                "stored": r.received_at.timestamp(),
                **{k: r.body.get(k) for k in ("version", "outcome", "reason", "detail", "step", "channel")},
            }
            for r in self.stack.store.records(stream="ota")
        ]
        from cityedge.sim.pilot.releases import FACTORY_VERSION, fleet

        return {
            "bundle": self.rollout.bundle,
            "version": inspect(self.stack.releases.bundle).manifest.version,
            "factory_version": FACTORY_VERSION,
            "expect": self.rollout.expect,
            "accepts": {n: list(a) for n, a in fleet(list(self.stack.agents), self.rollout).items()},
            "started_at": self.start_at,
            "published_at": self.published_at,
            "ended_at": self.ended_at,
            "result": self.result,
            "error": self.error,
            "nodes": nodes,
            "reports": reports,
            "audit": [e.action for e in self.stack.auth.store.audit_entries()],
        }
