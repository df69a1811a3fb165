"""The dashboard's pages: fleet overview, node detail, alerts, admin; the live stream; static
files. Server-rendered (Jinja2) with small scripts from `static/`; nothing from a CDN."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from cityedge.cloud.api.deps import ApiDeps, auth_service, deps_of
from cityedge.cloud.api.fleet import fleet_table, node_detail
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of
from cityedge.cloud.auth.service import Principal
from cityedge.cloud.registry import EnrollmentRefused
from cityedge.cloud.web.auth import COOKIE, can, web_principal
from cityedge.cloud.web.live import Cursors, stream

__all__ = ["router"]

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_STATIC: Final = Path(__file__).parent / "static"
_env = Environment(loader=PackageLoader("cityedge.cloud.web", "templates"), autoescape=select_autoescape())
_CSP: Final = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"


def _page(name: str, who: Principal | None, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(who=who, can=(lambda p: who is not None and can(who, p)), **context)
    return HTMLResponse(html, headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"})


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status.HTTP_303_SEE_OTHER)


@router.get("/ui/static/{name}")
def static(name: str) -> FileResponse:
    path = _STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


@router.get("/ui/login")
def login_form(error: str = "") -> HTMLResponse:
    return _page("login.html", None, error=error)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    who = auth_service(request).authenticate(token) if token else None
    if who is None:
        return _page("login.html", None, error="That token is not valid.")
    response = RedirectResponse("/ui/", status.HTTP_303_SEE_OTHER)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=12 * 3600)
    return response


@router.post("/ui/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE)
    return response


def _cursors(fleet: FleetDeps) -> dict[str, int]:
    latest = fleet.store.latest_events(1)
    return {
        "t": fleet.store.last_transition_id(),
        "e": latest[-1].arrival if latest else 0,
        "a": fleet.store.last_alert_id(),
    }


@router.get("/ui/")
def overview(
    who: Principal = Depends(web_principal("fleet.read")),
    deps: ApiDeps = Depends(deps_of),
    fleet: FleetDeps = Depends(fleet_of),
) -> HTMLResponse:
    cursors = _cursors(fleet)
    nodes = fleet_table(deps, fleet)
    counts = {s: sum(1 for n in nodes if n["status"] == s) for s in ("online", "stale", "offline", "unknown")}
    incidents = [e.as_dict() for e in fleet.store.latest_events(30)][::-1]
    alerts = sorted(fleet.store.firing_alerts(), key=lambda a: a["id"])
    return _page(
        "fleet.html", who, nodes=nodes, counts=counts, incidents=incidents, alerts=alerts, cursors=cursors,
        map_nodes=[n for n in nodes if n["lat"] is not None],
    )  # fmt: skip


@router.get("/ui/nodes/{node}")
def node_page(
    node: str,
    who: Principal = Depends(web_principal("fleet.read")),
    deps: ApiDeps = Depends(deps_of),
    fleet: FleetDeps = Depends(fleet_of),
) -> HTMLResponse:
    detail = node_detail(deps, fleet, node)
    since = deps.clock() - timedelta(hours=1)
    series = [
        {"ts": r.ts.isoformat(), "cameras": r.body.get("cameras", {})}
        for r in fleet.store.node_records(node, "heartbeat", since, limit=720)
    ]
    incidents = [e.as_dict() for e in fleet.store.events(node=node, since=since, limit=1000)][-30:][::-1]
    return _page(
        "node.html", who, n=detail, beat=detail["heartbeat"] or {}, series=series, incidents=incidents,
        cursors=_cursors(fleet), slo_ms=fleet.config.alerts.latency_slo_ms,
    )  # fmt: skip


@router.get("/ui/alerts")
def alerts_page(
    who: Principal = Depends(web_principal("alerts.read")), fleet: FleetDeps = Depends(fleet_of)
) -> HTMLResponse:
    history = fleet.store.alert_events(max(0, fleet.store.last_alert_id() - 200), limit=200)[::-1]
    firing = sorted(fleet.store.firing_alerts(), key=lambda a: a["id"])
    return _page("alerts.html", who, firing=firing, history=history, cursors=_cursors(fleet))


@router.get("/ui/admin")
def admin_page(request: Request, who: Principal = Depends(web_principal("users.admin"))) -> HTMLResponse:
    users = auth_service(request).store.users()
    return _page("admin.html", who, users=users)


@router.post("/ui/admin/users/{name}/revoke-tokens")
def revoke_tokens(
    name: str, request: Request, who: Principal = Depends(web_principal("users.admin"))
) -> Response:
    auth_service(request).revoke(name, who.name)
    return RedirectResponse("/ui/admin", status.HTTP_303_SEE_OTHER)


@router.post("/ui/nodes/{node}/revoke")
def revoke_node(
    node: str, who: Principal = Depends(web_principal("devices.revoke")), deps: ApiDeps = Depends(deps_of)
) -> Response:
    try:
        deps.registry.revoke(node, deps.clock())
    except EnrollmentRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return RedirectResponse(f"/ui/nodes/{node}", status.HTTP_303_SEE_OTHER)


@router.get("/ui/live")
def live(
    request: Request,
    t: int = 0,
    e: int = 0,
    a: int = 0,
    node: str | None = None,
    _: Principal = Depends(web_principal("fleet.read", redirect=False)),
    fleet: FleetDeps = Depends(fleet_of),
) -> StreamingResponse:
    cursors = Cursors(transitions=t, events=e, alerts=a, node=node)
    return StreamingResponse(
        stream(request, fleet.store, cursors),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
