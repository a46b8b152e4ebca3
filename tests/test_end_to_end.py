"""The embedded end-to-end path: sample inbox → the real DAGs via dag.test() → evaluation.

The headline (every indicator's points, the score, the grade, the yuan released, the recoveries
from sites past their rectification deadline and the net release) is recomputed here
independently, straight from the generated CSV files and the policy YAML, without the project's
parsing, SQL or evaluation code.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

PROJECT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2027, 2, 15)
ELIGIBLE_ZH = {"培训设备购置", "师资培训", "项目制培训", "评价标准开发", "技能培训补贴", "高技能人才培养补助"}
KEY_GROUPS_ZH = {"农村转移劳动力", "失业人员", "高校应届毕业生", "残疾人", "退役军人", "低收入农户"}
KEY_INDUSTRIES_ZH = {"先进制造业", "数字经济", "低空经济", "一老一小"}
HELD_BACK = "2026-06/S05/roster.csv"


@contextlib.contextmanager
def embedded_warehouse(root: Path) -> Iterator[str]:
    """A module's pipeline runs work in ``root/var`` with an SQLite warehouse there (the
    settings the DAG tasks read from the environment), restored afterwards; yields its URL."""
    url = f"sqlite:///{root / 'var' / 'warehouse.sqlite'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("YUHANG_VAR_DIR", str(root / "var"))
        env.setenv("YUHANG_WAREHOUSE_URL", url)
        yield url


@pytest.fixture(scope="module")
def run(tmp_path_factory, airflow_db):
    from yuhang_skills import cli
    from yuhang_sample.generator import SampleOptions, generate

    root = tmp_path_factory.mktemp("e2e")
    inbox = root / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.5))
    # One file is held back from the first runs; a later test drops it into the inbox and reruns.
    held = root / "held" / HELD_BACK
    held.parent.mkdir(parents=True)
    shutil.move(inbox / HELD_BACK, held)
    with embedded_warehouse(root) as url:
        result = cli.run_dags(AS_OF, None, inbox)
        engine = sa.create_engine(url)
        yield {"result": result, "inbox": inbox, "engine": engine, "root": root, "held": held,
               "rerun": lambda: cli.run_dags(AS_OF, None, inbox)}


def q2(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def independent_headline(inbox: Path) -> dict:
    policy = yaml.safe_load((PROJECT / "include/yuhang_skills/policy/yuhang.yaml").read_text(encoding="utf-8"))
    with open(PROJECT / "include/yuhang_skills/policy/sites.csv", encoding="utf-8") as fh:
        sites = {r["site_code"]: r for r in csv.DictReader(fh)}
    years = [2025, 2026]

    def months_active(code: str, year: int) -> int:
        start = dt.date.fromisoformat(sites[code]["active_from"])
        return 0 if year < start.year else 12 if year > start.year else 13 - start.month

    person_class: dict[tuple, set] = defaultdict(set)       # (site, year) -> {(id, class)}
    key_group = defaultdict(set)
    key_industry = defaultdict(set)
    assessed = defaultdict(set)
    passed = defaultdict(set)
    spent = Decimal(0)
    answers = defaultdict(int)
    satisfied = defaultdict(int)
    site_answers = defaultdict(int)       # (site, year) -> survey answers, workers and enterprises
    site_satisfied = defaultdict(int)
    outcomes = {}
    for path in sorted(inbox.rglob("*.csv")):
        period, site, kind = path.parts[-3], path.parts[-2], path.stem
        year = int(period[:4])
        for r in read_rows(path):
            if kind == "roster":
                key = (r["身份证号"], r["培训班编号"])
                person_class[(site, year)].add(key)
                if r["人员类别"] in KEY_GROUPS_ZH:
                    key_group[(site, year)].add(key)
                if r["产业领域"] in KEY_INDUSTRIES_ZH:
                    key_industry[(site, year)].add(key)
                if r["是否参加考核"] == "是":
                    assessed[(site, year)].add(key)
                    if r["考核结果"] == "合格":
                        passed[(site, year)].add(key)
            elif kind == "finance":
                if r["资金来源"] == "省级" and r["支出类别"] in ELIGIBLE_ZH:
                    spent += Decimal(r["金额(元)"])
            elif kind == "survey" and sites[site]["programme"] in ("station", "base"):
                who = "worker" if r["调查对象"] == "劳动者" else "enterprise"
                answers[who] += 1
                satisfied[who] += r["评价"] in ("非常满意", "满意")
                site_answers[(site, year)] += 1
                site_satisfied[(site, year)] += r["评价"] in ("非常满意", "满意")
            elif kind == "outcomes":
                outcomes[(site, int(r["年度"]))] = (int(r["低收入农户数"]), int(r["一户一技户数"]))

    site_years = {p: [(c, y) for c, s in sites.items() if s["programme"] == p for y in years if months_active(c, y)]
                  for p in ("village", "station", "base")}

    def mean_attainment(programme: str, fn) -> Decimal:
        values = [fn(c, y) for c, y in site_years[programme]]
        return sum(values, Decimal(0)) / len(values)

    def pt_attainment(target: int):
        def fn(c, y):
            goal = Decimal(target) * months_active(c, y) / 12
            return min(Decimal(1), Decimal(len(person_class[(c, y)])) / goal)
        return fn

    def pass_attainment(c, y):
        if not assessed[(c, y)]:
            return Decimal(0)
        return min(Decimal(1), Decimal(len(passed[(c, y)])) / Decimal(len(assessed[(c, y)])) / Decimal("0.90"))

    sb = site_years["station"] + site_years["base"]
    total_pt = sum(len(person_class[k]) for k in sb)
    low = sum(outcomes[k][0] for k in site_years["village"] if k in outcomes)
    skill = sum(outcomes[k][1] for k in site_years["village"] if k in outcomes)
    actual = {
        "provincial_execution_rate": (spent / Decimal(6_000_000), Decimal(1), 10),
        "station_person_times": (mean_attainment("station", pt_attainment(500)), Decimal(1), 20),
        "base_person_times": (mean_attainment("base", pt_attainment(1000)), Decimal(1), 15),
        "base_pass_rate": (mean_attainment("base", pass_attainment), Decimal(1), 10),
        "village_reporting": (Decimal(sum(k in outcomes for k in site_years["village"]))
                              / len(site_years["village"]), Decimal(1), 5),
        "key_group_share": (Decimal(sum(len(key_group[k]) for k in sb)) / total_pt, Decimal("0.60"), 10),
        "key_industry_share": (Decimal(sum(len(key_industry[k]) for k in sb)) / total_pt, Decimal("0.60"), 10),
        "village_one_household_one_skill": (Decimal(skill) / Decimal(low), Decimal(1), 10),
        "worker_satisfaction": (Decimal(satisfied["worker"]) / answers["worker"], Decimal("0.90"), 5),
        "enterprise_satisfaction": (Decimal(satisfied["enterprise"]) / answers["enterprise"], Decimal("0.90"), 5),
    }
    points = {k: q2(w * min(Decimal(1), a / t)) for k, (a, t, w) in actual.items()}
    score = sum(points.values(), Decimal(0))
    grade = "优" if score >= 90 else "良" if score >= 80 else "中" if score >= 60 else "差"
    tranche = Decimal(policy["provincial_tranches_yuan"][2027]["amount"])
    share = Decimal(1) if score >= 90 else score / 100 if score >= 60 else Decimal(0)
    released = (tranche * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    # Recoveries: no rectification decisions in this run, so every yearly target missed with its
    # deadline (31 December + N days) before the as-of date is overdue and recovers the site's
    # provincial plan money x (1 - attainment), a site's total never above its plan money.
    deadline_days = policy["rectification"]["deadline_days_after_year_end"]

    def plan_money(code: str) -> Decimal:
        cell = policy["budget_plan_wan_yuan"][int(sites[code]["batch_year"])][sites[code]["programme"]]
        return Decimal(cell["provincial"] * 10_000) / cell["sites"]

    def rate(num: int, den: int) -> Decimal | None:
        return Decimal(num) / den if den else None

    recoveries = Decimal(0)
    for programme in ("station", "base"):
        for c, y in site_years[programme]:
            if AS_OF <= dt.date(y, 12, 31) + dt.timedelta(days=deadline_days):
                continue
            goal = Decimal(500 if programme == "station" else 1000) * months_active(c, y) / 12
            attainments = [min(Decimal(1), len(person_class[(c, y)]) / goal)]
            if programme == "base":
                for actual in (rate(len(passed[(c, y)]), len(assessed[(c, y)])),
                               rate(site_satisfied[(c, y)], site_answers[(c, y)])):
                    attainments.append(Decimal(0) if actual is None else min(Decimal(1), actual / Decimal("0.90")))
            owed = sum(((1 - a) * plan_money(c)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                       for a in attainments)
            recoveries += min(owed, plan_money(c))
    return {"points": points, "score": score, "grade": grade, "released_yuan": released,
            "recoveries_yuan": recoveries, "net_released_yuan": max(Decimal(0), released - recoveries),
            "person_times": {k: len(v) for k, v in person_class.items()}}


def assert_headline_is(engine: sa.Engine, headline: dict, expected: dict) -> None:
    """The warehouse's points and person-times and the run's headline equal ``expected``
    (``independent_headline``)."""
    with engine.connect() as conn:
        points = {r.indicator: Decimal(str(r.points)) for r in conn.execute(sa.text(
            "select indicator, points from eval_indicator where run_id = :run"), {"run": headline["run_id"]})}
        person_times = {(r.site_code, r.year): r.person_times for r in conn.execute(sa.text(
            "select site_code, year, person_times from ind_site_year where person_times > 0 and basis = 'counted'"))}
    assert points == expected["points"]
    assert person_times == expected["person_times"]
    for key in ("score", "released_yuan", "recoveries_yuan", "net_released_yuan"):
        assert Decimal(headline[key]) == expected[key], key
    assert headline["grade"] == expected["grade"]


def test_headline_matches_an_independent_computation(run):
    headline = run["result"]["headline"]
    assert_headline_is(run["engine"], headline, independent_headline(run["inbox"]))
    assert Path(headline["workbook"]).is_file()


def _pdf_pages(path: Path) -> int:
    import subprocess

    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _pdf_text(path: Path) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _budget(name: str) -> int:
    policy = yaml.safe_load((PROJECT / "include/yuhang_skills/policy/yuhang.yaml").read_text(encoding="utf-8"))
    return int(policy["evaluation_runs"]["page_budget"][name])


def test_printed_workbook_and_report_keep_every_column_within_the_page_budget(run, tmp_path):
    """LibreOffice's PDF of the workbook and Chromium's print-to-PDF of the HTML report keep every
    column of the rectification and gap tables, within the policy's page budgets."""
    import subprocess

    from yuhang_skills.evaluation import reporting
    from yuhang_skills.evaluation.report_docx import convert_to_pdf

    headline = run["result"]["headline"]
    workbook_pdf = convert_to_pdf(Path(headline["workbook"]), tmp_path / "workbook.pdf")
    profile = tmp_path / "chromium"
    html_pdf = tmp_path / "report.pdf"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                    "--no-pdf-header-footer", f"--print-to-pdf={html_pdf}", Path(headline["report"]).as_uri()],
                   capture_output=True, timeout=180, check=True)
    for pdf, budget in ((workbook_pdf, "workbook_pdf"), (html_pdf, "html_pdf")):
        pages = _pdf_pages(pdf)
        assert 1 < pages <= _budget(budget), (pdf.name, pages)
        text = _squeezed(_pdf_text(pdf))
        for table in ("eval_rectification", "eval_gap"):
            for _, header, _ in reporting.SHEETS[table][1]:
                assert _squeezed(header) in text, (pdf.name, table, header)
        assert "逾期未整改(overdue)" in text and "人次" in text
    assert "overdue" not in _squeezed(_pdf_text(html_pdf)).replace("逾期未整改(overdue)", "").replace("(overdue)", "")


def test_the_official_report_converts_to_pdf_with_every_section(run):
    """The DOCX opens in LibreOffice and becomes a PDF whose text holds every section heading, the
    自评表 with a deviation reason for each missed target, and the release in 万元."""
    from decimal import Decimal

    from yuhang_skills.evaluation.report_docx import SECTIONS

    headline = run["result"]["headline"]
    pdf = Path(headline["official_pdf"])
    assert Path(headline["official_docx"]).is_file() and pdf.is_file()
    assert _pdf_pages(pdf) <= _budget("report_pdf")
    raw = _pdf_text(pdf)
    text = _squeezed(raw)
    for heading in SECTIONS:
        assert _squeezed(heading) in text, heading
    annex = text[text.index(_squeezed(SECTIONS[6])):text.index(_squeezed(SECTIONS[7]))]
    with run["engine"].connect() as conn:
        met = dict(conn.execute(sa.text("select indicator, met from eval_indicator where run_id = :r"),
                                {"r": headline["run_id"]}).all())
    missed = sum(1 for v in met.values() if not v)
    assert missed > 0
    assert annex.count("低于目标") == missed and annex.count("已达到年度目标") == len(met) - missed
    net_wan = (Decimal(headline["net_released_yuan"]) / 10_000).quantize(Decimal("0.01"))
    assert f"建议拨付{net_wan:,.2f}万元" in text
    assert "第1页/共" in text and headline["run_id"] in text and headline["input_fingerprint"][:16] in text


def test_recoveries_and_the_2027_plan_agree_with_the_net_release(run):
    with run["engine"].connect() as conn:
        district = conn.execute(sa.text(
            "select released_fen, recoveries_fen, net_released_fen, plan_unallocated_fen from eval_district "
            "where evaluation_year = 2027")).one()
        recovered = conn.execute(sa.text(
            "select coalesce(sum(recovery_fen), 0) from eval_rectification where evaluation_year = 2027")).scalar_one()
        funded, sites = conn.execute(sa.text(
            "select sum(funded_fen), count(*) from eval_plan_2027 where evaluation_year = 2027")).one()
    assert recovered == district.recoveries_fen
    assert district.net_released_fen == max(0, district.released_fen - district.recoveries_fen)
    assert funded + district.plan_unallocated_fen == district.net_released_fen
    assert sites == 25  # 3 stations and 22 villages on provincial money in 2027


def test_every_row_is_accounted_for(run):
    with run["engine"].connect() as conn:
        rows = conn.execute(sa.text(
            "select count(*), sum(rows_read), sum(rows_staged), sum(rows_quarantined) from submissions")).one()
        files = sum(1 for p in run["inbox"].rglob("*") if p.is_file())
    assert rows[0] == files
    assert rows[1] == rows[2] + rows[3]
    assert rows[3] == 0  # the clean sample has nothing to quarantine


def test_a_rerun_over_the_same_inbox_is_a_new_run_with_the_same_rows(run):
    """Intake and models are idempotent; the evaluation writes a second run whose rows equal the
    first's, and the first run's rows stay as they were."""
    tables = ["submissions", "raw_roster", "raw_finance", "raw_survey", "raw_outcomes", "quarantine",
              "ind_site_year", "ind_site_year_spending"]
    eval_tables = ["eval_indicator", "eval_site", "eval_gap", "eval_release", "eval_rectification", "eval_plan_2027",
                   "eval_excellent_station", "eval_village", "eval_submissions"]
    volatile = {"evaluated_at", "ingested_at", "run_at", "run_id"}

    def snapshot(run_id=None):
        out = {}
        with run["engine"].connect() as conn:
            for table in (eval_tables if run_id else tables):
                result = conn.execute(sa.text(f"select * from {table}" + (" where run_id = :r" if run_id else "")),
                                      {"r": run_id})
                keep = [i for i, c in enumerate(result.keys()) if c not in volatile]
                out[table] = sorted(tuple(str(row[i]) for i in keep) for row in result)
        return out

    first = run["result"]["headline"]["run_id"]
    before, first_rows = snapshot(), snapshot(first)
    second = run["rerun"]()
    assert second["headline"]["score"] == run["result"]["headline"]["score"]
    assert second["headline"]["run_id"] > first
    assert snapshot() == before
    assert snapshot(first) == first_rows
    assert snapshot(second["headline"]["run_id"]) == first_rows
    from yuhang_skills.evaluation import runs

    assert runs.diff(run["engine"], first, second["headline"]["run_id"]) == []


def _dag_test(dag_id: str, conf: dict, logical: dt.datetime):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    dag = bag.get_dag(dag_id)
    dag.deadline = None
    return dag.test(logical_date=logical, run_conf=conf)


def _final_files(outputs: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(outputs.glob("evaluation_2027_*"))}


def test_sign_off_then_a_rerun_with_one_more_file_is_a_new_run_and_the_final_stays(run):
    """The first run is signed off (the Airflow sign-off DAG for one role, the CLI for the others)
    and becomes final; then the held-back file goes into the real inbox and the real DAGs run again:
    a new draft run, a diff naming that file and the indicators it changed, and the final run's
    rows and files byte for byte as they were."""
    from zoneinfo import ZoneInfo

    from yuhang_skills import cli
    from yuhang_skills.evaluation import runs

    engine = run["engine"]
    first = run["result"]["headline"]["run_id"]
    signed = _dag_test("yuhang_evaluation_signoff", {"run": first, "role": "评价组", "name": "张评价", "comment": "数据已核"},
                       dt.datetime(2027, 2, 16, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert str(signed.state) == "success"
    assert runs.get_run(engine, first)["status"] == "draft"
    warehouse = os.environ["YUHANG_WAREHOUSE_URL"]
    for role, name in (("复核", "李复核"), ("负责人", "王局长")):
        assert cli.main(["evaluation", "sign", "--run", first, "--role", role, "--name", name,
                         "--warehouse", warehouse]) == 0
    assert runs.get_run(engine, first)["status"] == "final"
    signers = [(s["role"], s["name"], s["signed_by"].split(":")[0]) for s in runs.signoffs(engine, first)]
    assert signers == [("评价组", "张评价", "airflow"), ("复核", "李复核", "cli"), ("负责人", "王局长", "cli")]
    outputs = Path(os.environ["YUHANG_VAR_DIR"]) / "outputs"
    for suffix in ("xlsx", "html", "docx", "pdf"):
        assert (outputs / f"evaluation_2027_final.{suffix}").read_bytes() == \
            (outputs / f"evaluation_2027_{first}_signed.{suffix}").read_bytes()
    signed_text = _squeezed(_pdf_text(outputs / "evaluation_2027_final.pdf"))
    for name in ("张评价", "李复核", "王局长", "数据已核"):
        assert name in signed_text
    assert "正式" in signed_text and run["result"]["headline"]["input_fingerprint"] in signed_text
    tables = ["eval_indicator", "eval_site", "eval_district", "eval_gap", "eval_release", "eval_rectification",
              "eval_plan_2027", "eval_excellent_station", "eval_integrity", "eval_village", "eval_submissions",
              "eval_run_inputs"]

    def rows_of(run_id: str) -> dict:
        with engine.connect() as conn:
            return {t: sorted(map(tuple, conn.execute(sa.text(f"select * from {t} where run_id = :r"),
                                                      {"r": run_id}).all())) for t in tables}

    final_rows, final_files = rows_of(first), _final_files(outputs)
    shutil.move(run["held"], run["inbox"] / HELD_BACK)
    again = run["rerun"]()["headline"]
    second = again["run_id"]
    assert second != first and again["status"] == "draft"
    assert rows_of(first) == final_rows
    assert {k: v for k, v in _final_files(outputs).items() if k in final_files and "latest" not in k} == \
        {k: v for k, v in final_files.items() if "latest" not in k}
    assert runs.get_run(engine, first)["status"] == "final"
    diff = runs.diff(engine, first, second)
    added = [r for r in diff if r["section"] == "input" and r["change"] == "added"]
    assert len(added) == 1 and added[0]["subject"].endswith(HELD_BACK), added
    changed = {r["subject"].split(".")[0] for r in diff if r["section"] == "indicator"}
    assert {"key_group_share", "key_industry_share"} & changed
    text = runs.format_diff(first, second, diff)
    assert HELD_BACK.split("/")[0] in text and "key_" in text
    listed = cli.main(["evaluation", "diff", first, second, "--warehouse", warehouse])
    assert listed == 0


def test_a_fresh_deployments_first_scheduled_evaluation_is_refused(tmp_path, monkeypatch, airflow_db):
    """Unpausing yuhang_evaluation (yearly, 15 February 09:00) between 15 February 2026 and 14
    February 2027 makes Airflow run it for 15 February 2026, before any 2026 data: the run fails at
    once with the refusal and writes no run, row or file."""
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT / "dags")).get_dag("yuhang_evaluation")
    assert str(dag.schedule) == "0 9 15 2 *"
    dag_run = dag.test(logical_date=dt.datetime(2026, 2, 15, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert str(dag_run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states["evaluate"] == "failed" and states["write_outputs"] != "success"
    engine = sa.create_engine(os.environ["YUHANG_WAREHOUSE_URL"])
    with engine.connect() as conn:
        error = conn.execute(sa.text("select error from task_failures where dag_id = 'yuhang_evaluation'")).scalar()
        runs_written = conn.execute(sa.text("select count(*) from eval_runs")).scalar() \
            if sa.inspect(engine).has_table("eval_runs") else 0
    assert "拒绝评价" in error and "evaluation refused" in error and "2027-02-01" in error
    assert runs_written == 0
    assert not list((tmp_path / "var").glob("outputs/evaluation_*"))
