"""The submissions watchdog: calendar, missing list, early warning and alerts.

The story test runs the real ``yuhang_watchdog`` DAG with ``dag.test()`` against a real SMTP server
(aiosmtpd) and a real HTTP server on 127.0.0.1 standing in for a DingTalk group robot (it checks
the signature itself) and a generic webhook, on SQLite and on PostgreSQL, over a small registry
and a manifest written the way intake writes it. "Today" is pinned with the DAG's ``today`` param.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from loopback_servers import dingtalk_sign_is_valid
from conftest import loopback_channels

PROJECT = Path(__file__).resolve().parents[2]
POLICY = PROJECT / "include" / "yuhang_skills" / "policy" / "yuhang.yaml"
SECRET = "SECtest-robot-secret-0123456789"
DISTRICT = "skills-data@hrss.yuhang.example"
WUCHANG_OFFICE = "skills@wuchang.towns.yuhang.example"
REGISTRY = """site_code,programme,name_zh,town,batch_year,active_from,industry_focus,contact_name,contact_email,partners
S01,station,五常街道技能培训站点,五常街道,2026,2026-07-01,,五常站联络员,s01@sites.test,浙江某职业技术学院
V01,village,五常街道技能型乡村(社区)1号,五常街道,2026,2026-07-01,,V01联络员,v01@sites.test,共富工坊
B02,base,数字经济技能实训基地,仁和街道,2026,2026-03-01,digital_economy,B02联络员,b02@sites.test,某数字企业
"""


# --- calendar and working days (no database) ---------------------------------------------------
def _policy_with(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "yuhang.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _plan(policy_path: Path, tmp_path: Path):
    from yuhang_skills.core.policy import Plan

    sites = tmp_path / "sites.csv"
    sites.write_text(REGISTRY, encoding="utf-8")
    return Plan.load(policy_path, sites, PROJECT / "include" / "yuhang_skills" / "policy" / "contract.yaml")


def test_due_dates_move_past_rest_days_by_the_official_calendar(plan):
    from yuhang_skills.watchdog.calendar import WorkingDays

    days = WorkingDays(plan.policy.alerts.working_days)
    # National Day holiday 2026 (1-7 October): a due date on 5 October moves to Thursday 8 October.
    assert days.due_date(dt.date(2026, 10, 5)) == (dt.date(2026, 10, 8), days.official_source, True)
    # Saturday 10 October 2026 is a make-up working day (调休上班) in the State Council notice: no move.
    assert days.due_date(dt.date(2026, 10, 10))[0] == dt.date(2026, 10, 10)
    # An ordinary weekend: Saturday 31 January 2026 (village outcomes) moves to Monday 2 February.
    assert days.due_date(dt.date(2026, 1, 31))[0] == dt.date(2026, 2, 2)
    assert days.official_source.startswith("chinese-calendar")


def test_years_without_an_official_calendar_use_the_policy_list_and_say_so(plan):
    from yuhang_skills.watchdog.calendar import WorkingDays

    days = WorkingDays(plan.policy.alerts.working_days)
    # 2027 is past chinese-calendar's data: the policy's provisional Spring Festival (5-13 Feb).
    assert days.due_date(dt.date(2027, 2, 10)) == (dt.date(2027, 2, 15), "policy provisional list 2027", False)
    # A provisional make-up working day (Saturday 20 February 2027) is a working day.
    assert days.due_date(dt.date(2027, 2, 20)) == (dt.date(2027, 2, 20), "policy provisional list 2027", False)
    # A weekend of 2027 outside any holiday: still not official.
    assert days.due_date(dt.date(2027, 1, 31)) == (dt.date(2027, 2, 1), "policy provisional list 2027", False)
    # A year with neither: weekends only, and said so.
    due, source, official = days.due_date(dt.date(2031, 3, 15))  # a Saturday
    assert (due, official) == (dt.date(2031, 3, 17), False) and "no holiday list for 2031" in source


def test_calendar_follows_registry_and_cadence(tmp_path):
    from yuhang_skills.watchdog.calendar import expected_submissions

    plan = _plan(POLICY, tmp_path)
    expected = {(e.site_code, e.kind, e.period): e for e in expected_submissions(plan, dt.date(2026, 10, 12))}
    # Monthly kinds from the active-from month to the month of the as-of date; stations and bases
    # owe quarterly surveys, villages the yearly outcomes (period December, due 31 January).
    assert sorted(p for s, k, p in expected if (s, k) == ("S01", "roster")) == [
        "2026-07", "2026-08", "2026-09", "2026-10"]
    assert sorted(p for s, k, p in expected if (s, k) == ("B02", "survey")) == [
        "2026-03", "2026-06", "2026-09", "2026-12"]  # a period is listed once it has begun
    assert not [k for s, k, p in expected if s == "V01" and k == "survey"]
    outcomes = expected[("V01", "outcomes", "2026-12")]
    assert (outcomes.nominal_due, outcomes.due_date, outcomes.calendar_official) == (
        dt.date(2027, 1, 31), dt.date(2027, 2, 1), False)
    assert expected[("B02", "roster", "2026-04")].due_date == dt.date(2026, 5, 11)  # Sunday 10 May
    assert ("B02", "roster", "2026-02") not in expected  # before the base was active


def test_policy_alerts_are_typed_and_checked(plan, tmp_path):
    from yuhang_skills.core.policy import Policy

    alerts = plan.policy.alerts
    assert {c.connection_id for c in alerts.channels.values()} == {"yuhang_smtp", "yuhang_dingtalk", "yuhang_webhook"}
    assert set(alerts.town_offices) == {s.town for s in plan.sites}  # every town of the registry
    assert alerts.retry.waits() == [2.0, 4.0]
    assert dt.date(2027, 2, 10) in alerts.working_days.provisional_holidays[2027]
    for change, message in [
        (lambda r: r["alerts"]["channels"]["email"].update(kind="pigeon"),
         r"alerts\.channels\.email\.kind: 'pigeon' is not one of 'smtp', 'dingtalk' or 'webhook'"),
        (lambda r: r["alerts"]["recipients"]["town_office"].update(channels=["fax"]),
         r"alerts\.recipients\.town_office\.channels\[0\]: unknown channels \['fax'\]"),
        (lambda r: r["alerts"].update(escalation_days=0), r"alerts\.escalation_days: .*greater than or equal to 1"),
        (lambda r: r["alerts"]["working_days"]["provisional"][2027].update(make_up_workdays=["2027-02-10"]),
         r"alerts\.working_days\.provisional\.2027\.make_up_workdays\[0\]: make-up working days"),
        (lambda r: r["submissions"]["survey"].update(cadence="fortnightly"),
         r"submissions\.survey\.cadence: 'fortnightly' is not one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            Policy.load(_policy_with(tmp_path, change))


def test_a_run_is_live_within_the_grace_days_only(plan):
    from yuhang_skills.watchdog.tasks import is_live

    today = dt.date(2026, 10, 12)
    assert plan.policy.alerts.backfill_grace_days == 1
    assert is_live(plan, today, today) and is_live(plan, dt.date(2026, 10, 11), today)
    assert not is_live(plan, dt.date(2026, 10, 10), today)  # a backfill: rebuild only
    assert not is_live(plan, dt.date(2026, 10, 13), today)  # a date still to come speaks for no one


def test_dingtalk_signature_is_the_one_dingtalk_checks():
    from yuhang_skills.watchdog.channels import dingtalk_signature

    timestamp = 1_700_000_000_000
    sign = dingtalk_signature(SECRET, timestamp)
    assert dingtalk_sign_is_valid(SECRET, str(timestamp), sign, now_ms=timestamp)
    assert not dingtalk_sign_is_valid("SECanother", str(timestamp), sign, now_ms=timestamp)
    assert not dingtalk_sign_is_valid(SECRET, str(timestamp), sign, now_ms=timestamp + 2 * 3600 * 1000)


def test_a_long_dingtalk_text_is_cut_at_a_line_and_says_so():
    from yuhang_skills.watchdog.channels import TRUNCATED_NOTE, fit_text

    text = "\n".join(f"- 站点 S{i:02d} 培训花名册 2026年9月：已逾期 {i} 天" for i in range(400))
    cut = fit_text(text, 2000)
    assert len(cut.encode()) <= 2000 and cut.endswith(TRUNCATED_NOTE)
    assert cut.split("\n\n")[0].split("\n")[-1] in text.split("\n")  # whole lines only
    assert fit_text("short", 2000) == "short"


def test_delivery_backs_off_and_records_the_last_error():
    from yuhang_skills.watchdog.channels import deliver
    from yuhang_skills.core.policy import RetryPolicy

    class Flaky:
        def __init__(self, failures: int):
            self.failures, self.calls = failures, 0

        def notify(self, context):
            self.calls += 1
            if self.calls <= self.failures:
                raise ConnectionRefusedError(f"refused #{self.calls}")

    retry = RetryPolicy(attempts=4, initial_backoff_seconds=1, backoff_factor=3, max_backoff_seconds=5,
                        timeout_seconds=1)
    waits: list[float] = []
    assert deliver(Flaky(2), {}, retry, sleep=waits.append).outcome == "sent"
    assert waits == [1, 3]
    waits.clear()
    failed = deliver(Flaky(9), {}, retry, sleep=waits.append)
    assert (failed.outcome, failed.attempts, waits) == ("failed", 4, [1, 3, 5])
    assert "refused #4" in failed.error and failed.channel_down


def test_a_refused_mailbox_fails_alone_and_an_outage_takes_the_channel_down():
    import smtplib

    from yuhang_skills.watchdog.channels import deliver
    from yuhang_skills.core.policy import RetryPolicy

    class Refusing:
        def __init__(self, code: int):
            self.code, self.calls = code, 0

        def notify(self, context):
            self.calls += 1
            raise smtplib.SMTPRecipientsRefused({"typo@sites.test": (self.code, b"answer")})

    retry = RetryPolicy(attempts=3, initial_backoff_seconds=1, backoff_factor=2, max_backoff_seconds=5,
                        timeout_seconds=1)
    waits: list[float] = []
    unknown = Refusing(550)  # this mailbox, for good: no retry, the channel still works
    failed = deliver(unknown, {}, retry, sleep=waits.append)
    assert (failed.outcome, failed.attempts, failed.channel_down, unknown.calls, waits) == ("failed", 1, False, 1, [])
    outage = Refusing(421)  # the server takes nothing for now: retried, then the channel is down for this run
    failed = deliver(outage, {}, retry, sleep=waits.append)
    assert (failed.outcome, failed.attempts, failed.channel_down, outage.calls, waits) == ("failed", 3, True, 3, [1, 2])


# --- the DAG, end to end ------------------------------------------------------------------------
def _submission(site: str, period: str, kind: str, received: str, status: str = "accepted",
                rows_read: int = 0, rows_quarantined: int = 0, name: str | None = None) -> dict:
    name = name or f"{period}/{site}/{kind}.csv"
    sha = hashlib.sha256(f"{site}|{period}|{kind}|{received}|{name}".encode()).hexdigest()
    return {"submission_id": f"{sha}:{site}:{period}:{kind}", "sha256": sha, "site_code": site, "period": period,
            "kind": kind, "original_name": name, "archive_path": f"/archive/{sha}.csv", "size_bytes": 100,
            "received_at": dt.datetime.fromisoformat(received), "ingested_at": dt.datetime.fromisoformat(received),
            "version": 1, "is_current": status != "rejected", "status": status, "rows_read": rows_read,
            "rows_staged": rows_read - rows_quarantined, "rows_quarantined": rows_quarantined}


def _roster_rows(sub: dict, people: int, passed: int) -> list[dict]:
    month = dt.date.fromisoformat(sub["period"] + "-01")
    return [{"submission_id": sub["submission_id"], "source_row": i + 2, "site_code": sub["site_code"],
             "period": sub["period"], "class_id": f"{sub['site_code']}-{sub['period']}", "course": "数字技能",
             "occupation": "人工智能训练师", "level": "level_4", "industry": "digital_economy",
             "start_date": month, "end_date": month + dt.timedelta(days=20), "hours": Decimal("40"),
             "person_key": f"{sub['site_code']}{sub['period']}{i:04d}".ljust(64, "0"), "name_key": "0" * 64,
             "birth_date": dt.date(1990, 1, 1), "sex": "F", "age_on_start": 36, "person_group": "unemployed",
             "low_income_household": None, "assessed": True, "passed": i < passed, "certificate_no": None,
             "satisfaction": "satisfied"} for i in range(people)]


def _seed_warehouse(url: str) -> None:
    """Three sites as of mid-October 2026: S01 (station) owes four things, V01 (village) sent a
    partially accepted roster and a rejected ledger, B02 (base) sent everything but trains too few
    people and passes too few of them."""
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import SQL_DIR, load_settings
    from yuhang_skills.indicators import layers, models

    subs, roster, quarantine = [], [], []
    for month, received in (("2026-07", "2026-08-05 10:00"), ("2026-08", "2026-09-08 10:00")):
        for kind in ("roster", "finance"):
            if (month, kind) == ("2026-08", "finance"):
                continue  # S01's August ledger never comes (until 13 October)
            sub = _submission("S01", month, kind, received, rows_read=90 if kind == "roster" else 5)
            subs.append(sub)
            if kind == "roster":
                roster += _roster_rows(sub, 90, 90)
    for month in ("2026-07", "2026-08"):
        for kind in ("roster", "finance"):
            subs.append(_submission("V01", month, kind, f"{month[:5]}{int(month[5:]) + 1:02d}-06 09:00", rows_read=3))
    partial = _submission("V01", "2026-09", "roster", "2026-10-09 16:20", "partially_accepted", 12, 2)
    rejected = _submission("V01", "2026-09", "finance", "2026-10-09 16:25", "rejected", 0, 0)
    subs += [partial, rejected]
    for row, column, value, zh, en in (
        (5, "id_number", "330110********123X", "身份证号校验位错误", "ID number check character is wrong"),
        (9, "id_number", "330110********5678", "身份证号校验位错误", "ID number check character is wrong"),
        (9, "group", "其它", "人员类别不在代码表中", "person group is not in the code list"),
    ):
        quarantine.append({"submission_id": partial["submission_id"], "sha256": partial["sha256"],
                           "source_file": partial["original_name"], "site_code": "V01", "period": "2026-09",
                           "kind": "roster", "source_row": row, "column_name": column, "value": value,
                           "expectation": "expect_column_values_to_match_regex", "reason_zh": zh, "reason_en": en})
    quarantine.append({"submission_id": rejected["submission_id"], "sha256": rejected["sha256"],
                       "source_file": rejected["original_name"], "site_code": "V01", "period": "2026-09",
                       "kind": "finance", "source_row": None, "column_name": None, "value": None,
                       "expectation": "required_columns",
                       "reason_zh": "2026-09/V01/finance.csv: 缺少必填列 金额(元)",
                       "reason_en": "2026-09/V01/finance.csv: required column amount is missing"})
    for m in range(3, 10):
        month = f"2026-{m:02d}"
        received = f"2026-{m + 1:02d}-05 10:00"
        for kind in ("roster", "finance"):
            sub = _submission("B02", month, kind, received, rows_read=20 if kind == "roster" else 4)
            subs.append(sub)
            if kind == "roster":
                roster += _roster_rows(sub, 20, 16)
        if m % 3 == 0:
            subs.append(_submission("B02", month, "survey", f"2026-{m + 1:02d}-06 10:00", rows_read=30))
    engine = warehouse.make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), subs)
        conn.execute(warehouse.raw_roster.insert(), roster)
        conn.execute(warehouse.quarantine.insert(), quarantine)
    # the indicators built from them, as yuhang_indicators leaves them: the early warnings read
    # their targets from int_site_year_targets
    models.load_reference(engine, Plan.from_settings(load_settings()))
    layers.build_models(engine, SQL_DIR)
    engine.dispose()


@pytest.fixture
def channels(monkeypatch):
    """The loopback servers, and the three Airflow connections pointing at them."""
    with loopback_channels(monkeypatch, SECRET, "watchdog@hrss.yuhang.example") as servers:
        yield servers


@pytest.fixture
def watchdog_run(airflow_db, warehouse_url, tmp_path, monkeypatch):
    """Runs the real DAG for an as-of date and a pinned today; returns the DAG run's summary."""
    from airflow.dag_processing.dagbag import DagBag
    from zoneinfo import ZoneInfo

    def test_policy(raw: dict) -> None:
        raw["submissions"]["survey"]["due_day"] = 5  # Q3 2026 surveys fall due in the National Day holiday
        raw["alerts"]["escalation_days"] = 5
        raw["alerts"]["retry"].update(attempts=3, initial_backoff_seconds=0.05, backoff_factor=2,
                                      max_backoff_seconds=0.2, timeout_seconds=5)

    sites = tmp_path / "sites.csv"
    sites.write_text(REGISTRY, encoding="utf-8")
    monkeypatch.setenv("YUHANG_POLICY_PATH", str(_policy_with(tmp_path, test_policy)))
    monkeypatch.setenv("YUHANG_SITES_PATH", str(sites))
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    _seed_warehouse(warehouse_url)
    dag = DagBag(dag_folder=str(PROJECT / "dags" / "yuhang_watchdog.py")).get_dag("yuhang_watchdog")
    for task in dag.tasks:
        task.retries = 0  # a failing task fails the run at once instead of waiting for its retry delay
    minute = iter(range(1000))

    def run(as_of: str, today: str, send: bool = True) -> dict:
        logical = dt.datetime.fromisoformat(as_of).replace(hour=9, minute=next(minute) % 60,
                                                           tzinfo=ZoneInfo("Asia/Shanghai"))
        dag_run = dag.test(logical_date=logical, run_conf={"as_of": as_of, "today": today, "send_alerts": send})
        assert dag_run.state == "success", [(ti.task_id, ti.state) for ti in dag_run.get_task_instances()]
        return dag_run.get_task_instance("send_alerts").xcom_pull(task_ids="send_alerts")

    engine = sa.create_engine(warehouse_url)
    yield run, engine
    engine.dispose()


def _readme_samples() -> list[str]:
    """The messages the README's "Sample alert" section shows."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Sample alert\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```\n(.*?)\n```$", section, flags=re.S | re.M)


def _table(engine: sa.Engine, name: str) -> list[dict]:
    """Rows of a warehouse table, typed by its declaration (dates as dates on SQLite too)."""
    from yuhang_skills.core import warehouse

    table = warehouse.metadata.tables[name]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def _missing(engine: sa.Engine) -> dict[str, dict]:
    return {f"{r['site_code']}/{r['kind']}/{r['period']}": r for r in _table(engine, "missing_submissions")}


def _add_submissions(engine: sa.Engine, *subs: dict) -> None:
    from yuhang_skills.core import warehouse

    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), list(subs))


def test_watchdog_alerts_escalates_deduplicates_and_recovers(channels, watchdog_run):
    smtp, web = channels
    run, engine = watchdog_run

    # --- 12 October 2026: the first live run -----------------------------------------------------
    summary = run("2026-10-12", today="2026-10-12")
    assert summary["mode"] == "live" and summary.get("sent") == 6, summary
    missing = _missing(engine)
    assert {k for k, r in missing.items() if r["status"] == "open"} == {
        "S01/finance/2026-08", "S01/roster/2026-09", "S01/finance/2026-09", "S01/survey/2026-09",
        "V01/finance/2026-09"}
    survey = missing["S01/survey/2026-09"]
    assert (survey["nominal_due"], survey["due_date"], survey["days_overdue"]) == (
        dt.date(2026, 10, 5), dt.date(2026, 10, 8), 4)  # moved past the National Day holiday
    assert missing["S01/finance/2026-08"]["escalated"] and not survey["escalated"]
    assert missing["V01/finance/2026-09"]["last_rejected_at"] == dt.datetime(2026, 10, 9, 16, 25)
    assert all(r["first_alerted"] is not None for r in missing.values() if r["status"] == "open")

    # One message per recipient listing everything the site owes.
    [s01] = smtp.to("s01@sites.test")
    for owed in ("培训花名册（roster） 2026年9月", "资金支出台账（finance） 2026年8月", "资金支出台账（finance） 2026年9月",
                 "满意度调查（survey） 2026年第3季度"):
        assert owed in s01.html
    assert "截止 2026-10-08（原定 2026-10-05，遇休息日顺延）" in s01.html
    assert "S01" in s01.subject and "4项材料逾期未报送" in s01.subject
    assert smtp.to("b02@sites.test") == []  # B02 owes nothing
    # Rejected and partially accepted files: rows and reasons to fix.
    [v01] = smtp.to("v01@sites.test")
    assert "2026-09/V01/roster.csv" in v01.html and "部分接收" in v01.html
    assert "第 5 行 — 身份证号（id_number）：身份证号校验位错误" in v01.html
    assert ("第 9 行 — 人员类别（group）：人员类别不在代码表中（值：其它） / person group is not in the code list；"
            "身份证号（id_number）：身份证号校验位错误") in v01.html  # one line per row, every reason
    assert "整份文件：2026-09/V01/finance.csv: 缺少必填列 金额(元)" in v01.html
    # Escalation: the town office and the district hear only of the item overdue 5 days or more.
    [town] = smtp.to(WUCHANG_OFFICE)
    assert "资金支出台账（finance） 2026年8月" in town.html and "2026年9月" not in town.html
    assert smtp.to("skills@renhe.towns.yuhang.example") == []
    [district] = smtp.to(DISTRICT)
    [robot] = web.calls("/robot/send")
    assert robot.signature_valid and robot.query["access_token"] == "robot-token"
    text = robot.body["markdown"]["text"]
    assert robot.body["msgtype"] == "markdown" and "报送督办 全区" in robot.body["markdown"]["title"]
    assert "S01 五常街道技能培训站点（五常街道）" in text and "2026年8月" in text and "2026年9月" not in text
    # Early warning with the projection: B02, active from March (target 1000 x 10/12), 20 a month.
    assert ("B02 数字经济技能实训基地 2026年培训人次：应报 7 个月共 140 人次，月均 20，按此推算全年（在册 10 个月）"
            "约 200 人次，低于目标 833.3 人次（预计差 633 人次）") in text
    assert "合格率 80%，低于目标 90%" in text
    assert "S01 五常街道技能培训站点 2026年培训人次" not in text  # 180 in 3 months: on track for 250
    assert "年度目标预警" in district.html
    # The README's "Sample alert" shows S01's e-mail and the district's robot message as sent.
    with engine.connect() as conn:
        s01_markdown = conn.execute(sa.text("select message from alerts where recipient = 's01@sites.test'")).scalar()
    assert _readme_samples() == [s01_markdown, text]
    [hook] = web.calls("/hook")
    assert hook.body["recipient_role"] == "district_team"
    assert [m["site_code"] + "/" + m["kind"] + "/" + m["period"] for m in hook.body["missing"]] == [
        "S01/finance/2026-08"]
    assert {w["indicator"] for w in hook.body["early_warnings"]} == {"person_times", "pass_rate"}
    warnings = {(r["site_code"], r["indicator"]): r for r in _table(engine, "early_warnings")}
    assert warnings[("B02", "person_times")]["at_risk"] and not warnings[("S01", "person_times")]["at_risk"]
    assert Decimal(warnings[("B02", "person_times")]["projected"]) == Decimal("200")
    with engine.connect() as conn:  # the target is the site-year's, pro-rated once in SQL
        target = conn.execute(sa.text(
            "select target from int_site_year_targets where site_code = 'B02' and year = 2026"
            " and indicator = 'person_times' and basis = 'counted'")).scalar_one()
    assert Decimal(warnings[("B02", "person_times")]["target"]) == Decimal(str(target)).quantize(Decimal("0.0001"))

    # --- the same day again: nothing new is sent ----------------------------------------------
    before = len(_table(engine, "alerts"))
    assert run("2026-10-12", today="2026-10-12")["messages"] == 0
    assert len(smtp.mails) == 4 and len(web.calls("/robot/send")) == 1 and len(web.calls("/hook")) == 1
    assert len(_table(engine, "alerts")) == before

    # --- a backfill for 1 October: the table as it was then, and nothing sent -------------------
    backfill = run("2026-10-01", today="2026-10-12")
    assert backfill["mode"] == "rebuild_only" and backfill["messages"] == 0
    then = _missing(engine)
    assert {k for k, r in then.items() if r["status"] == "open"} == {"S01/finance/2026-08"}
    assert then["S01/finance/2026-08"]["days_overdue"] == 21 and then["S01/finance/2026-08"]["first_alerted"] is None
    assert len(smtp.mails) == 4 and len(_table(engine, "alerts")) == before

    # --- 14 October: files arrive, one more item escalates, and SMTP and DingTalk are down -----
    _add_submissions(engine, _submission("S01", "2026-09", "roster", "2026-10-13 11:00", rows_read=80),
                     _submission("S01", "2026-08", "finance", "2026-10-13 11:05", rows_read=5))
    smtp.refusing = True
    web.fail("/robot/send", 500)
    down = run("2026-10-14", today="2026-10-14")
    assert down["failed"] == 4 and down["sent"] == 1, down
    log = sorted([r for r in _table(engine, "alerts") if r["as_of"] == dt.date(2026, 10, 14)], key=lambda r: r["alert_id"])
    assert [(r["channel"], r["recipient"], r["outcome"], r["attempts"]) for r in log] == [
        ("email", "s01@sites.test", "failed", 3),  # tried with back-off
        ("email", WUCHANG_OFFICE, "failed", 0),  # the channel is down: not tried again this run
        ("email", DISTRICT, "failed", 0),
        ("dingtalk", "yuhang_dingtalk", "failed", 3),
        ("webhook", "yuhang_webhook", "sent", 1),
    ]
    assert "421" in log[0]["error"] and "500" in log[3]["error"]
    assert len(web.calls("/robot/send", ok_only=False)) == 1 + 3 and len(smtp.mails) == 4
    [_, hook] = web.calls("/hook")
    assert [m["kind"] + "/" + m["period"] for m in hook.body["missing"]] == ["survey/2026-09"]  # 6 days now
    assert [m["kind"] + "/" + m["period"] for m in hook.body["resolved"]] == ["finance/2026-08"]
    missing = _missing(engine)
    assert missing["S01/roster/2026-09"]["status"] == "resolved"
    assert missing["S01/roster/2026-09"]["resolved_at"] == dt.datetime(2026, 10, 13, 11, 0)
    assert missing["S01/roster/2026-09"]["resolution_announced_at"] is None  # its only recipient is unreachable

    # --- 15 October: the channels are back; what failed goes out, once --------------------------
    smtp.refusing = False
    web.recover()
    back = run("2026-10-15", today="2026-10-15")
    # Four messages carry what failed yesterday; the September ledgers of S01 and V01 (rejected),
    # 5 days overdue today, escalate too (so the webhook, which had yesterday's news, gets only them).
    assert back["sent"] == 5 and "failed" not in back, back
    [_, s01_again] = smtp.to("s01@sites.test")
    assert "已收到补报（2 项）" in s01_again.html and "2026-10-13 11:00 已收到（逾期 3 天），本项销号" in s01_again.html
    assert "另有 2 项逾期材料此前已提醒（最近一次 2026-10-12）" in s01_again.html  # not repeated within 7 days
    assert "2026年第3季度" not in s01_again.html and "资金支出台账（finance） 2026年9月" not in s01_again.html
    [_, robot] = web.calls("/robot/send")
    assert robot.signature_valid
    assert "满意度调查（survey） 2026年第3季度：截止 2026-10-08（原定 2026-10-05，遇休息日顺延），已逾期 7 天" in (
        robot.body["markdown"]["text"])
    assert "已收到补报（1 项）" in robot.body["markdown"]["text"]
    assert "V01 五常街道技能型乡村(社区)1号（五常街道）" in robot.body["markdown"]["text"]
    [_, _, hook] = web.calls("/hook")
    assert [m["site_code"] + "/" + m["kind"] + "/" + m["period"] for m in hook.body["missing"]] == [
        "S01/finance/2026-09", "V01/finance/2026-09"] and hook.body["resolved"] == []
    settled = [r for r in _table(engine, "alerts") if r["as_of"] == dt.date(2026, 10, 14)]
    assert [(r["follow_up"], r["follow_up_alert_id"] is not None) for r in settled if r["outcome"] == "failed"] == [
        ("resent", True)] * 4
    assert _missing(engine)["S01/roster/2026-09"]["resolution_announced_at"] is not None

    # --- and again the same day: the resolution was said once ----------------------------------
    assert run("2026-10-15", today="2026-10-15")["messages"] == 0
    assert sum("已收到补报" in m.html for m in smtp.mails) == 3  # S01's contact, the town office, the district
    assert len(smtp.mails) == 7 and len(web.calls("/robot/send")) == 2 and len(web.calls("/hook")) == 3

    # --- a rerun of the day before, inside the grace days: the later run spoke already ---------
    rerun = run("2026-10-14", today="2026-10-15")
    assert rerun["mode"] == "rebuild_only" and "2026-10-15 has already sent" in rerun["reason"]
    assert len(smtp.mails) == 7 and len(web.calls("/hook")) == 3

    # --- send_alerts off, in 2027: the calendar without an official holiday list -----------------
    quiet = run("2027-02-20", today="2027-02-20", send=False)
    assert quiet["mode"] == "rebuild_only" and quiet["reason"] == "send_alerts is off"
    calendar = {(r["site_code"], r["kind"], r["period"]): r for r in _table(engine, "expected_submissions")}
    roster = calendar[("S01", "roster", "2027-01")]
    assert (roster["nominal_due"], roster["due_date"], roster["calendar_official"]) == (
        dt.date(2027, 2, 10), dt.date(2027, 2, 15), False)
    assert roster["calendar_source"] == "policy provisional list 2027"
    assert calendar[("S01", "roster", "2026-09")]["calendar_official"]
    assert len(smtp.mails) == 7


def test_a_channel_without_a_connection_is_recorded_not_configured(watchdog_run, monkeypatch):
    for name in ("AIRFLOW_CONN_YUHANG_SMTP", "AIRFLOW_CONN_YUHANG_DINGTALK", "AIRFLOW_CONN_YUHANG_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    run, engine = watchdog_run
    summary = run("2026-10-12", today="2026-10-12")
    assert summary["not_configured"] == 6 and "sent" not in summary
    rows = _table(engine, "alerts")
    assert {r["outcome"] for r in rows} == {"not_configured"}
    assert any("yuhang_dingtalk" in r["error"] for r in rows)
    assert all(r["first_alerted"] is None for r in _missing(engine).values())
