"""The evaluator view in a real api-server (conftest.evaluator_view): Airflow's login guards every
page, the pages show the warehouse's own figures, personal values only masked, site-supplied text
escaped, and a missing warehouse gets the plain message instead of a traceback."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from markupsafe import escape

from tests.plugins.conftest import CLEAR_ID, CLEAR_NAME, PASSWORD, SCRIPT, SIGNERS, USER, _check_character, http

NO_EVALUATION = "no evaluation yet: run yuhang_intake and yuhang_evaluation"
CLEAR_ID_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def yuan(fen) -> str:
    return f"{Decimal(int(fen)) / 100:,.2f}"


@pytest.fixture(scope="module")
def warehouse(evaluator_view):
    engine = sa.create_engine(evaluator_view["warehouse_url"])
    yield engine
    engine.dispose()


def rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def final_run(engine) -> dict:
    [run] = rows(engine, "select * from eval_runs where status = 'final'")
    return run


def page(view, path: str) -> str:
    status, text, _ = http(f"{view['base']}/yuhang-evaluation/{path}", view["token"])
    assert status == 200, (path, status, text[:2000])
    assert "Traceback" not in text
    return text


def test_planted_id_number_is_really_invalid():
    assert _check_character(CLEAR_ID[:17]) != CLEAR_ID[17]


def test_unauthenticated_requests_get_no_data(evaluator_view, warehouse):
    base = evaluator_view["base"]
    run_id = rows(warehouse, "select run_id from eval_runs")[0]["run_id"]
    district = rows(warehouse, "select released_fen from eval_district")[0]
    for path in ("", "sites", "sites/V03", "submissions", f"runs/{run_id}", f"runs/{run_id}/files/workbook"):
        status, text, _ = http(f"{base}/yuhang-evaluation/{path}", accept="application/json")
        assert status == 401, (path, status)
        assert yuan(district["released_fen"]) not in text and "V03" not in text
        status, text, headers = http(f"{base}/yuhang-evaluation/{path}", accept="text/html")
        assert status == 303 and headers["location"].startswith("/auth/login"), (path, status, headers)
        assert yuan(district["released_fen"]) not in text
        status, text, _ = http(f"{base}/yuhang-evaluation/{path}", token="not-a-token", accept="application/json")
        assert status in (401, 403) and yuan(district["released_fen"]) not in text


def test_a_missing_warehouse_gets_the_plain_message(evaluator_view):
    for path, (status, text, _) in evaluator_view["empty"].items():
        assert status == 200, (path, status, text[:1000])
        assert NO_EVALUATION in text, path
        assert "Traceback" not in text and "sqlalchemy" not in text.lower()


def test_runs_page_shows_each_run_as_eval_district_has_it(evaluator_view, warehouse):
    text = page(evaluator_view, "")
    runs = rows(warehouse, "select * from eval_runs order by run_id")
    assert [r["status"] for r in runs] == ["final", "draft"]  # -01 signed by every role, -02 waiting
    for run in runs:
        [district] = rows(warehouse, "select * from eval_district where run_id = :r", r=run["run_id"])
        row = re.search(rf'<tr data-run="{re.escape(run["run_id"])}">(.*?)</tr>', text, flags=re.S).group(1)
        assert f'<td class="n score">{Decimal(str(district["score"])):.2f}</td>' in row
        assert f'<td class="grade">{district["grade"]}</td>' in row
        assert f'<td class="n released">{yuan(district["released_fen"])}</td>' in row
        assert f'<td class="n net">{yuan(district["net_released_fen"])}</td>' in row
        assert run["input_fingerprint"][:12] in row and run["as_of"][:10] in row
        assert {"final": "正式 final", "draft": "草稿 draft"}[run["status"]] in row
        for role, name in SIGNERS:
            assert (f"{role}: {name}" in row) == (run["status"] == "final")
        assert f'href="./runs/{run["run_id"]}"' in text  # relative links only
    assert not re.search(r'(href|action|src)="/', text)


def test_compare_two_runs_shows_the_resubmitted_file(evaluator_view, warehouse):
    a, b = [r["run_id"] for r in rows(warehouse, "select run_id from eval_runs order by run_id")]
    for text in (page(evaluator_view, ""), page(evaluator_view, f"?a={a}&b={b}")):
        assert f"{a} → {b}" in text
        table = text.split('<table id="diff">')[1].split("</table>")[0]
        planted = evaluator_view["planted"]["file"]
        assert re.search(rf"<tr><td>input</td><td>[^<]*{re.escape(planted)}</td><td>(changed|added)</td>", table), table
    same = page(evaluator_view, f"?a={a}&b={a}")
    assert f"{a} → {a}" in same and "no differences" in same


def test_run_page_headline_dimensions_waterfall_gap_and_downloads(evaluator_view, warehouse):
    run = final_run(warehouse)
    [district] = rows(warehouse, "select * from eval_district where run_id = :r", r=run["run_id"])
    text = page(evaluator_view, f"runs/{run['run_id']}")
    headline = re.search(r'<div class="headline" id="headline">(.*?)</div>\s*<p>', text, flags=re.S).group(1)
    assert f'<b class="score">{Decimal(str(district["score"])):.2f}</b>' in headline
    assert f'<b class="grade">{district["grade"]}</b>' in headline
    assert f'<b class="released">{yuan(district["released_fen"])}</b>' in headline
    assert f'<b class="net">{yuan(district["net_released_fen"])}</b>' in headline
    for d in rows(warehouse, "select dimension, sum(points) as points from eval_indicator where run_id = :r"
                             " group by dimension", r=run["run_id"]):
        assert f'<tr class="dimension"><th colspan="2">{escape(d["dimension"])}</th>' in text
    for i in rows(warehouse, "select indicator from eval_indicator where run_id = :r", r=run["run_id"]):
        assert f'<span class="en">{i["indicator"]}</span>' in text
    assert 'data-chart="waterfall"' in text or "Release waterfall" in text
    rectification = rows(warehouse, "select * from eval_rectification where run_id = :r", r=run["run_id"])
    section = text.split('<table id="rectification">')[1].split("</table>")[0]
    assert section.count("<tr>") - 1 == len(rectification) > 0
    assert yuan(district["recoveries_fen"]) in text
    plan = rows(warehouse, "select count(*) as n from eval_plan_2027 where run_id = :r", r=run["run_id"])[0]["n"]
    assert text.split('<table id="plan">')[1].split("</table>")[0].count("<tr>") - 1 == plan
    assert "points to full release" in text
    files = json.loads(run["outputs"])
    assert {"workbook", "report", "official_docx", "workbook_signed", "report_signed", "official_docx_signed"} <= set(files)
    if shutil.which("soffice"):  # the PDF of the official report needs LibreOffice (CI installs it)
        assert {"official_pdf", "official_pdf_signed"} <= set(files)
    assert "正式报告 Official report (DOCX) · 签署版 signed edition" in text
    for kind in files:
        assert f'href="{run["run_id"]}/files/{kind}"' in text
        status, body, headers = http(f"{evaluator_view['base']}/yuhang-evaluation/runs/{run['run_id']}/files/{kind}",
                                     evaluator_view["token"], accept="*/*")
        assert status == 200 and files[kind].endswith(headers["content-disposition"].split("filename=")[1].strip('"'))
    status, _, _ = http(f"{evaluator_view['base']}/yuhang-evaluation/runs/{run['run_id']}/files/nothing",
                        evaluator_view["token"])
    assert status == 404


def test_sites_page_lists_every_site_and_filters(evaluator_view, warehouse):
    sites = rows(warehouse, "select site_code, programme, town from ref_sites")
    text = page(evaluator_view, "sites")
    assert len(re.findall(r'<tr data-site="', text)) == len(sites) == 67
    stations = page(evaluator_view, "sites?programme=station")
    assert sorted(re.findall(r'<tr data-site="(\w+)"', stations)) == sorted(
        s["site_code"] for s in sites if s["programme"] == "station")
    town = sites[0]["town"]
    in_town = page(evaluator_view, f"sites?town={quote(town)}&programme=")
    assert sorted(re.findall(r'<tr data-site="(\w+)"', in_town)) == sorted(s["site_code"] for s in sites if s["town"] == town)
    unmet = rows(warehouse, "select distinct site_code from eval_site where met = :no", no=False)
    assert unmet
    for s in unmet[:5]:
        row = re.search(rf'<tr data-site="{s["site_code"]}">(.*?)</tr>', text, flags=re.S).group(1)
        assert '<td class="not-met">否 no</td>' in row


def test_site_page_shows_quarantine_reasons_masked_and_site_text_escaped(evaluator_view, warehouse):
    text = page(evaluator_view, "sites/V03")
    quarantined = rows(warehouse, "select column_name, value, reason_en from quarantine where site_code = 'V03'")
    assert any(q["reason_en"] == "id_number check character is wrong (GB 11643-1999)"
               and q["value"] == CLEAR_ID[:6] + "*" * 8 + CLEAR_ID[-4:] for q in quarantined)
    for q in quarantined:
        assert escape(q["reason_en"]) in text
        assert escape(q["value"] or "") in text
    assert CLEAR_ID not in text and CLEAR_NAME not in text
    assert CLEAR_ID[:6] + "********" + CLEAR_ID[-4:] in text
    assert any(q["value"] == SCRIPT for q in quarantined)  # the site's text reached the page's source rows
    assert SCRIPT not in text and escape(SCRIPT) in text
    submissions = rows(warehouse, "select period, kind, status from submissions where site_code = 'V03' and is_current")
    table = text.split('<table id="submissions">')[1].split("</table>")[0]
    for s in submissions:
        assert re.search(rf"<tr><td>{s['period']}</td><td>{s['kind']}</td><td class=\"state-{s['status']}\">", table)


def test_no_page_shows_a_clear_id_number(evaluator_view, warehouse):
    runs = [f"runs/{r['run_id']}" for r in rows(warehouse, "select run_id from eval_runs")]
    codes = [r["site_code"] for r in rows(warehouse, "select site_code from ref_sites")]
    for path in ["", "sites", "submissions"] + runs + [f"sites/{c}" for c in codes]:
        text = page(evaluator_view, path)
        assert not CLEAR_ID_PATTERN.search(text), (path, CLEAR_ID_PATTERN.search(text).group(0))


def test_site_page_findings_and_rectification(evaluator_view, warehouse):
    run = final_run(warehouse)  # the site pages read the year's final run
    site = rows(warehouse, "select site_code, count(*) as n from eval_rectification where run_id = :r"
                           " group by site_code order by n desc", r=run["run_id"])[0]
    text = page(evaluator_view, f"sites/{site['site_code']}")
    section = text.split('<table id="rectification">')[1].split("</table>")[0]
    assert section.count("<tr>") - 1 == site["n"]
    finding = rows(warehouse, "select site_code, check_name, finding_id from integrity_findings order by finding_id")[0]
    text = page(evaluator_view, f"sites/{finding['site_code']}")
    findings = text.split('<table id="findings">')[1].split("</table>")[0]
    assert f"<tr><td>{finding['finding_id']}</td><td>{finding['check_name']}</td>" in findings


def test_submissions_today_groups_the_watchdog_list_by_town(evaluator_view, warehouse):
    text = page(evaluator_view, "submissions")
    missing = rows(warehouse, "select town, status from missing_submissions")
    open_items = [m for m in missing if m["status"] == "open"]
    assert open_items
    assert f'<b id="open-count">{len(open_items)}</b>' in text
    for town in {m["town"] for m in open_items}:
        section = text.split(f'<section class="town" data-town="{escape(town)}">')[1].split("</section>")[0]
        assert section.count("<tr>") - 1 >= 1
        missing_table = section.split('<table class="missing">')[1].split("</table>")[0]
        assert missing_table.count("<tr>") - 1 == sum(1 for m in open_items if m["town"] == town)


def test_api_lists_the_plugin(evaluator_view):
    status, text, _ = http(f"{evaluator_view['base']}/api/v2/plugins", evaluator_view["token"], accept="application/json")
    assert status == 200, text[:500]
    [plugin] = [p for p in json.loads(text)["plugins"] if p["name"] == "yuhang_evaluator_view"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/yuhang-evaluation"]
    [view] = plugin["external_views"]
    assert view["name"] == "绩效评价 Evaluation" and not view["href"].startswith("/")
    status, text, _ = http(f"{evaluator_view['base']}/api/v2/importErrors", evaluator_view["token"],
                           accept="application/json")
    assert "yuhang_evaluator_view" not in text


def test_browser_logs_in_and_reaches_the_page_from_the_nav(evaluator_view, warehouse, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    run = final_run(warehouse)
    [district] = rows(warehouse, "select score, released_fen from eval_district where run_id = :r", r=run["run_id"])
    mine = f'tr[data-run="{run["run_id"]}"]'
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(locale="zh-CN")
            ui = context.new_page()
            ui.set_default_timeout(60_000)
            ui.goto(f"{evaluator_view['base']}/yuhang-evaluation/", wait_until="domcontentloaded")
            ui.wait_for_url(re.compile(r".*/auth/login.*"))  # not logged in: Airflow's login page
            ui.get_by_label(re.compile("username", re.I)).fill(USER)
            ui.get_by_label(re.compile("password", re.I)).fill(PASSWORD)
            ui.get_by_role("button", name=re.compile("sign in|log ?in|登录", re.I)).click()
            ui.wait_for_url(re.compile(r".*/yuhang-evaluation/?$"))  # back where the login came from
            expect(ui.locator(f"{mine} .released")).to_have_text(yuan(district["released_fen"]))

            ui.goto(f"{evaluator_view['base']}/", wait_until="domcontentloaded")
            ui.get_by_role("link", name=re.compile("绩效评价 Evaluation")).first.click()
            ui.wait_for_url(re.compile(r".*/plugin/yuhang-evaluation.*"))
            frame = ui.frame_locator("iframe").first
            expect(frame.locator(f"{mine} .score")).to_have_text(f"{Decimal(str(district['score'])):.2f}")
            frame.get_by_role("link", name=re.compile("站点 Sites")).click()
            expect(frame.locator('tr[data-site="V03"]')).to_be_visible()
            ui.screenshot(path=str(tmp_path / "evaluator-view.png"))
        finally:
            browser.close()
