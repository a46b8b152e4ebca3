"""The embedded end-to-end path: sample inbox → the real DAGs via dag.test() → evaluation.

The headline (every indicator's points, the score, the grade and the yuan released) is
recomputed here independently, straight from the generated CSV files and the policy YAML,
without the project's parsing, SQL or evaluation code.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections import defaultdict
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


@pytest.fixture(scope="module")
def run(tmp_path_factory, airflow_db):
    from yuhang_skills import cli
    from yuhang_skills.sample import SampleOptions, generate

    root = tmp_path_factory.mktemp("e2e")
    inbox = root / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.5))
    saved = {k: os.environ.get(k) for k in ("YUHANG_VAR_DIR", "YUHANG_WAREHOUSE_URL")}
    os.environ["YUHANG_VAR_DIR"] = str(root / "var")
    os.environ["YUHANG_WAREHOUSE_URL"] = f"sqlite:///{root / 'var' / 'warehouse.sqlite'}"
    try:
        result = cli.run_dags(AS_OF, None, inbox)
        engine = sa.create_engine(os.environ["YUHANG_WAREHOUSE_URL"])
        yield {"result": result, "inbox": inbox, "engine": engine, "root": root,
               "rerun": lambda: cli.run_dags(AS_OF, None, inbox)}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def q2(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def independent_headline(inbox: Path) -> dict:
    policy = yaml.safe_load((PROJECT / "include/policy/yuhang.yaml").read_text(encoding="utf-8"))
    with open(PROJECT / "include/policy/sites.csv", encoding="utf-8") as fh:
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
    return {"points": points, "score": score, "grade": grade,
            "released_yuan": (tranche * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
            "person_times": {k: len(v) for k, v in person_class.items()}}


def test_headline_matches_an_independent_computation(run):
    expected = independent_headline(run["inbox"])
    headline = run["result"]["headline"]
    with run["engine"].connect() as conn:
        points = {r.indicator: Decimal(str(r.points)) for r in conn.execute(sa.text(
            "select indicator, points from eval_indicator where evaluation_year = 2027"))}
        person_times = {(r.site_code, r.year): r.person_times for r in conn.execute(sa.text(
            "select site_code, year, person_times from ind_site_year where person_times > 0"))}
    assert points == expected["points"]
    assert person_times == expected["person_times"]
    assert Decimal(headline["score"]) == expected["score"]
    assert headline["grade"] == expected["grade"]
    assert Decimal(headline["released_yuan"]) == expected["released_yuan"]
    assert Path(headline["workbook"]).is_file()


def test_every_row_is_accounted_for(run):
    with run["engine"].connect() as conn:
        rows = conn.execute(sa.text(
            "select count(*), sum(rows_read), sum(rows_staged), sum(rows_quarantined) from submissions")).one()
        files = sum(1 for p in run["inbox"].rglob("*") if p.is_file())
    assert rows[0] == files
    assert rows[1] == rows[2] + rows[3]
    assert rows[3] == 0  # the clean sample has nothing to quarantine


def test_rerun_changes_nothing(run):
    tables = ["submissions", "stg_roster", "stg_finance", "stg_survey", "stg_outcomes", "quarantine",
              "ind_site_year", "eval_indicator", "eval_gap"]
    volatile = {"evaluated_at", "ingested_at", "run_at"}

    def snapshot():
        out = {}
        with run["engine"].connect() as conn:
            for table in tables:
                result = conn.execute(sa.text(f"select * from {table}"))
                keep = [i for i, c in enumerate(result.keys()) if c not in volatile]
                out[table] = sorted(tuple(str(row[i]) for i in keep) for row in result)
        return out

    before = snapshot()
    second = run["rerun"]()
    assert second["headline"]["score"] == run["result"]["headline"]["score"]
    assert snapshot() == before
