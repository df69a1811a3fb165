"""The operator's dashboard: server-rendered pages (fleet, node, alerts, admin) with small
scripts and a live stream (SSE), served by the control plane's API app; and
`start_dashboard` (`server.py`), which serves the API and the dashboard in-process for the pilot.

The router is `cityedge.cloud.web.routes.router`; `ControlPlane.api_app` includes it.
"""
