"""The evaluator view: a FastAPI app the Airflow api-server mounts (plugins/yuhang_evaluator_view.py).

Pages: evaluation runs (and the comparison of two), one run, the sites, one site, and the
submissions watchdog's list for today. Server-rendered with Jinja2 (autoescaped: text a site
supplied comes back as text), relative links only, so the pages work under any path prefix or
reverse proxy and inside the Airflow UI's frame.

Access: every route depends on Airflow's own ``get_user`` (airflow.api_fastapi.core_api.security),
which takes the bearer token of the REST API or, without one, the ``_token`` cookie the Airflow UI
sets at login, and asks the configured auth manager to validate it. A request without a valid
token gets 401 (a browser is sent to the auth manager's login page instead); no page is rendered.
The pages only read the warehouse (data.py).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from yuhang_skills.evaluator_view import data

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")
URL_PREFIX = "/yuhang-evaluation"
STATUS_LABELS = {
    "provisional": "预评估 provisional",
    "draft": "草稿 draft",
    "final": "正式 final",
    "superseded": "已替代 superseded",
}
SUBMISSION_LABELS = {
    "accepted": "已接收 accepted",
    "partially_accepted": "部分接收 partially accepted",
    "no_rows_accepted": "无可用行 no rows accepted",
    "rejected": "已退回 rejected",
    "failed": "处理失败 failed",
    "missing": "缺报 missing",
    "not_yet_due": "未到期 not yet due",
}
FILE_LABELS = {
    "workbook": "工作簿 Workbook (XLSX)",
    "report": "HTML 报告 HTML report",
    "official_docx": "正式报告 Official report (DOCX)",
    "official_pdf": "正式报告 Official report (PDF)",
}
PROGRAMME_LABELS = {"village": "技能型乡村 village", "station": "培训站点 station", "base": "实训基地 base"}


def _user_dependency():
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def _user_name(user: Any) -> str:
    for attribute in ("get_name", "get_id"):
        try:
            return str(getattr(user, attribute)())
        except Exception:  # noqa: BLE001 - any auth manager's user type
            continue
    return "?"


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yuan"] = data.yuan
    env.filters["num"] = _number
    env.filters["points"] = lambda v: "–" if v is None else f"{Decimal(str(v)):.2f}"
    env.filters["pct"] = lambda v: "–" if v is None else f"{float(v) * 100:.1f}%"
    env.filters["status"] = lambda s: STATUS_LABELS.get(s, s)
    env.filters["submission"] = lambda s: SUBMISSION_LABELS.get(s, s)
    env.filters["programme"] = lambda p: PROGRAMME_LABELS.get(p, p)
    env.filters["file_label"] = _file_label
    env.filters["short"] = lambda s: (s or "")[:12]
    env.filters["day"] = lambda v: "–" if v is None else str(v)[:10]
    env.filters["moment"] = lambda v: "–" if v is None else str(v)[:16]
    return env


def _where() -> str:
    """The warehouse URL without its password, or where it would have come from."""
    try:
        return data.describe_url(data.warehouse_url())
    except data.WarehouseUnreachable:
        return f"connection {data.WAREHOUSE_CONN_ID}"


def _file_label(kind: str) -> str:
    """A run's file kind as eval_runs.outputs records it (``<kind>`` or ``<kind>_signed``)."""
    signed = kind.endswith("_signed")
    base = kind.removesuffix("_signed")
    return FILE_LABELS.get(base, base) + (" · 签署版 signed edition" if signed else "")


def _number(value: Any) -> str:
    if value is None:
        return "–"
    try:
        d = Decimal(str(value))
        return f"{d.normalize():,f}" if d == d.to_integral() else f"{d:,.2f}".rstrip("0").rstrip(".")
    except Exception:  # noqa: BLE001
        return str(value)


def create_app() -> FastAPI:
    get_user = _user_dependency()
    app = FastAPI(
        title="Yuhang evaluation (evaluator view)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(get_user)],
    )
    env = _templates()

    def page(request: Request, template: str, root: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        user = getattr(request.state, "evaluator", None)
        html = env.get_template(template).render(root=root, user=user, **context)
        return HTMLResponse(html, status_code=status_code)

    def reader(request: Request, root: str) -> data.Reader | HTMLResponse:
        try:
            return data.Reader()
        except data.NoEvaluation:
            return empty(request, root)
        except data.WarehouseUnreachable as exc:
            return unreachable(request, root, exc)

    def empty(request: Request, root: str, detail: str | None = None) -> HTMLResponse:
        return page(
            request,
            "message.html",
            root,
            title="尚无评价 No evaluation yet",
            zh=data.NO_EVALUATION_ZH,
            en=data.NO_EVALUATION_EN,
            detail=detail,
            url=_where(),
        )

    def unreachable(request: Request, root: str, exc: Exception) -> HTMLResponse:
        log.warning("warehouse unreachable: %s", exc)
        return page(
            request,
            "message.html",
            root,
            status_code=503,
            title="数仓无法访问 Warehouse unreachable",
            zh="数仓暂时无法访问，请检查 yuhang_warehouse 连接或 YUHANG_WAREHOUSE_URL",
            en="the warehouse cannot be reached: check the yuhang_warehouse connection or YUHANG_WAREHOUSE_URL",
            detail=str(exc),
            url=_where(),
        )

    def guarded(request: Request, root: str, render) -> Response:
        """Render with a reader; an empty or unreachable warehouse gets the plain message."""
        r = reader(request, root)
        if isinstance(r, HTMLResponse):
            return r
        try:
            return render(r)
        except data.NotFound as exc:
            return page(
                request,
                "message.html",
                root,
                status_code=404,
                title="未找到 Not found",
                zh="没有这个评价运行或站点",
                en=str(exc),
                detail=None,
                url=None,
            )
        except data.NoEvaluation as exc:
            return empty(request, root, None if str(exc) == data.NO_EVALUATION_EN else str(exc))
        except data.WarehouseUnreachable as exc:
            return unreachable(request, root, exc)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    async def evaluator(request: Request, user: Any = Depends(get_user)) -> Any:
        request.state.evaluator = _user_name(user)
        return user

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            try:
                from airflow.api_fastapi.app import get_auth_manager

                login = get_auth_manager().get_url_login(next_url=str(request.url))
                return RedirectResponse(login, status_code=303)
            except Exception:  # noqa: BLE001 - fall back to the plain refusal
                pass
        body = env.get_template("refused.html").render(
            root="", user=None, status=exc.status_code, detail=str(exc.detail)
        )
        return HTMLResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(evaluator)])
    def runs_page(request: Request, a: str | None = None, b: str | None = None) -> Response:
        def render(r: data.Reader) -> Response:
            runs = r.require_runs()
            compare = None
            if a and b:
                compare = {"a": r.run(a), "b": r.run(b), "rows": r.diff(a, b)}
            elif len(runs) >= 2:
                compare = {"a": runs[1], "b": runs[0], "rows": r.diff(runs[1]["run_id"], runs[0]["run_id"])}
            return page(request, "runs.html", "./", title="评价运行 Evaluation runs", runs=runs, compare=compare)

        return guarded(request, "./", render)

    @app.get("/runs/{run_id}", response_class=HTMLResponse, dependencies=[Depends(evaluator)])
    def run_page(request: Request, run_id: str) -> Response:
        def render(r: data.Reader) -> Response:
            from yuhang_skills.evaluation.report_html import waterfall_chart, waterfall_steps

            detail = r.run_detail(run_id, data.load_policy())
            chart = Markup(waterfall_chart(waterfall_steps(detail["district"])))  # built with escaped text
            files = {kind: r.output_file(run_id, kind) for kind in detail["run"]["files"]}
            return page(
                request,
                "run.html",
                "../",
                title=f"评价运行 {run_id}",
                waterfall=chart,
                files={k: v.name for k, v in files.items() if v is not None},
                **detail,
            )

        return guarded(request, "../", render)

    @app.get("/runs/{run_id}/files/{kind}", dependencies=[Depends(evaluator)])
    def run_file(request: Request, run_id: str, kind: str) -> Response:
        def render(r: data.Reader) -> Response:
            path = r.output_file(run_id, kind)
            if path is None or not path.name.startswith("evaluation_"):
                return page(
                    request,
                    "message.html",
                    "../../../",
                    status_code=404,
                    title="文件不存在 No such file",
                    zh=f"运行 {run_id} 没有文件 {kind}",
                    en=f"run {run_id} has no file {kind}",
                    detail=None,
                    url=None,
                )
            return FileResponse(path, filename=path.name)

        return guarded(request, "../../../", render)

    @app.get("/sites", response_class=HTMLResponse, dependencies=[Depends(evaluator)])
    def sites_page(request: Request, programme: str | None = None, town: str | None = None) -> Response:
        def render(r: data.Reader) -> Response:
            found = r.sites(programme or None, town or None)
            return page(
                request, "sites.html", "./", title="站点 Sites", programme=programme or "", town=town or "", **found
            )

        return guarded(request, "./", render)

    @app.get("/sites/{site_code}", response_class=HTMLResponse, dependencies=[Depends(evaluator)])
    def site_page(request: Request, site_code: str) -> Response:
        return guarded(
            request, "../", lambda r: page(request, "site.html", "../", title=f"站点 {site_code}", **r.site(site_code))
        )

    @app.get("/submissions", response_class=HTMLResponse, dependencies=[Depends(evaluator)])
    def submissions_page(request: Request) -> Response:
        return guarded(
            request,
            "./",
            lambda r: page(
                request, "submissions.html", "./", title="今日报送 Submissions today", **r.submissions_today()
            ),
        )

    return app


app = create_app()
