"""Seeded, deterministic sample inbox in the published data contract.

``generate`` writes ``<inbox>/<YYYY-MM>/<site code>/<kind>.<csv|xlsx>`` for every site active
in each month of a window: monthly rosters and finance ledgers, quarterly satisfaction surveys
(stations and bases) and yearly outcomes (villages). Volumes, money and pass rates follow the
plan (``Plan``): a station trains some 400-700 person-times a year, a base 900-1,400, a village
a few dozen; each site spends 85-100% of its provincial (and district) allocation; bases buy
equipment worth more than twice their subsidy.

On top of that clean picture it plants what real submissions from 67 offices contain, each
pattern behind its own option (all off with ``SampleOptions.clean()`` / ``--clean``): GBK and
BOM encodings, XLSX with a title row, English headers, wrong ID check characters, trainees
outside working age, skipped months, ``_v2`` resubmissions, late files, the same person in
overlapping classes at two sites, provincial money spent on ineligible items, an
underperforming station, a base with a low pass rate, and a little formatting noise. What was
planted is returned (and optionally written) as a truth summary for tests.

The subsidy-fraud patterns the integrity checks look for are planted the
same way, each behind its own option and each alone, so that only its own check fires:

- ``over_yearly_limit_rate``: station/base persons with exactly four classes in one calendar
  year (by start date), pairwise without a shared day and of distinct occupation and level;
- ``repeat_occupation_level_rate``: persons in a second, non-overlapping class of the same
  occupation and level (two classes in all);
- ``near_retirement_rate``: single-class trainees whose class starts 1-20 days after their
  statutory retirement date (``yuhang_skills.intake.identity``, the policy's female base);
- ``certificate_burst_site``: one month of the last implementation year in which that site adds
  4-6 classes (times the scale, if above 1) of 40-60 trainees, all passed, ending within 3 days;
- ``uniform_class_rate``: classes of 10 or more trainees, all assessed and passed, every one
  giving the same satisfaction answer;
- ``duplicate_invoice_rate``: an invoice number reused on another site's (different) payment;
- ``duplicate_voucher_rate``: a payment booked again, whole, by another site in the same month
  (same voucher number, amount and payee);
- ``out_of_period_payment_rate``: payments in the files of the month the implementation period
  ends, dated 1-20 days after it ends;
- ``base_over_claim``: a base whose equipment (all sources) costs less than twice the subsidy it
  was paid (provincial and district);
- ``training_overpaid_site``: a station paying, in the last implementation year, more training
  money (project_training, training_subsidy, all sources) than the limit per person-time of its
  roster.

The patterns are planted apart from one another: a planted person, class or payment is never
reused by another pattern, and nothing is planted in a site-month whose files the sample leaves
out (``missing_month_rate``), so the truth summary lists exactly what the files show. The clean
world is kept free of every one of them: no person exceeds the Zhejiang limits, no class of 10 or
more is uniform (one rating is changed where chance makes one), invoice numbers are unique and no
two sites share a (voucher, amount, payee), no payment leaves the period, bases buy equipment
worth more than twice their subsidy, training money stays below the limit per person-time of each
site-year's roster (training payments over it are booked as teacher training or other costs), and
no site passes a certificate-burst's worth of trainees within the burst window. The thresholds
are read from the policy's ``integrity`` section.

Same arguments give byte-identical files: every random draw comes from a numpy ``Generator``
seeded from ``--seed`` and the draw's purpose, file modification times are computed
submission times (Asia/Shanghai, from the policy) and XLSX document properties are fixed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import xlsxwriter

from yuhang_skills.core.policy import WAN, Contract, Plan, Site
from yuhang_skills.core.settings import load_settings
from yuhang_skills.intake.identity import check_character, working_age_status

# --------------------------------------------------------------------------- catalogues

LEVELS = ("primary", "intermediate", "senior", "technician", "special_skill")
_LEVEL_WEIGHTS = np.array([0.45, 0.35, 0.15, 0.05, 1.0])
_LEVEL_DIGIT = np.array(["5", "4", "3", "2", "0"])  # 五级 ... 二级; 0 = 专项能力


@dataclass(frozen=True)
class Occupation:
    """An occupation (工种) taught in Yuhang, with what a class of it looks like."""

    name: str
    industry: str  # contract enum ``industry`` code
    levels: tuple[str, ...]
    hours: tuple[int, int]
    male_share: float
    village_weight: float
    station_weight: float


_P, _I, _S, _T, _X = LEVELS
OCCUPATIONS: tuple[Occupation, ...] = (
    Occupation("电工", "advanced_manufacturing", (_P, _I, _S, _T), (40, 120), 0.92, 0, 5),
    Occupation("数控车工", "advanced_manufacturing", (_P, _I, _S), (60, 120), 0.85, 0, 3),
    Occupation("焊工", "advanced_manufacturing", (_P, _I, _S), (40, 100), 0.9, 0, 3),
    Occupation("钳工", "advanced_manufacturing", (_P, _I, _S), (40, 100), 0.85, 0, 2),
    Occupation("工业机器人系统操作员", "advanced_manufacturing", (_I, _S), (60, 120), 0.75, 0, 3),
    Occupation("多工序数控机床操作调整工", "advanced_manufacturing", (_I, _S), (80, 120), 0.85, 0, 1),
    Occupation("电子商务师", "digital_economy", (_P, _I, _S), (40, 96), 0.4, 3, 4),
    Occupation("网络直播营销", "digital_economy", (_X,), (8, 40), 0.35, 5, 4),
    Occupation("互联网营销师", "digital_economy", (_P, _I), (40, 80), 0.4, 1, 2),
    Occupation("人工智能训练师", "digital_economy", (_P, _I, _S), (40, 96), 0.55, 0, 3),
    Occupation("全媒体运营师", "digital_economy", (_I,), (40, 80), 0.4, 0, 1),
    Occupation("计算机程序设计员", "digital_economy", (_I, _S), (80, 120), 0.7, 0, 1),
    Occupation("网络与信息安全管理员", "digital_economy", (_I, _S), (60, 120), 0.75, 0, 1),
    Occupation("无人机驾驶员", "low_altitude", (_P, _I, _S), (56, 120), 0.85, 0, 5),
    Occupation("无人机装调检修工", "low_altitude", (_P, _I), (48, 100), 0.85, 0, 2),
    Occupation("无人机测绘操控员", "low_altitude", (_P, _I), (40, 80), 0.8, 0, 1),
    Occupation("农业无人机植保", "low_altitude", (_X,), (16, 40), 0.85, 2, 0),
    Occupation("养老护理员", "elderly_childcare", (_P, _I, _S), (40, 100), 0.12, 4, 6),
    Occupation("保育师", "elderly_childcare", (_P, _I, _S), (40, 96), 0.05, 1, 4),
    Occupation("育婴员", "elderly_childcare", (_P, _I), (40, 80), 0.05, 1, 3),
    Occupation("婴幼儿发展引导员", "elderly_childcare", (_P, _I), (40, 80), 0.05, 0, 2),
    Occupation("健康照护师", "elderly_childcare", (_P, _I), (40, 80), 0.2, 1, 2),
    Occupation("老年人能力评估师", "elderly_childcare", (_I, _S), (24, 60), 0.25, 0, 1),
    Occupation("中式烹调师", "other", (_P, _I, _S), (40, 96), 0.6, 4, 4),
    Occupation("中式面点师", "other", (_P, _I), (40, 80), 0.4, 4, 2),
    Occupation("茶艺师", "other", (_P, _I, _S), (24, 80), 0.3, 5, 2),
    Occupation("美容师", "other", (_P, _I), (40, 80), 0.1, 0, 2),
    Occupation("家政服务员", "other", (_P, _I), (24, 60), 0.1, 3, 3),
    Occupation("农艺工", "other", (_P, _I), (16, 48), 0.55, 5, 0),
    Occupation("茶叶加工工", "other", (_P, _I), (24, 60), 0.55, 4, 0),
    Occupation("民宿管家", "other", (_P, _I), (16, 48), 0.4, 4, 0),
    Occupation("竹编工艺", "other", (_X,), (16, 40), 0.45, 3, 0),
)
_OCC_NAME = np.array([o.name for o in OCCUPATIONS])
_OCC_MALE = np.array([o.male_share for o in OCCUPATIONS])
_OCC_HOURS = np.array([o.hours for o in OCCUPATIONS])
_OCC_INDUSTRY = np.array([o.industry for o in OCCUPATIONS])
# Cumulative level probabilities per occupation (rows), over LEVELS (columns).
_OCC_LEVEL_CUM = np.cumsum(
    np.array([[_LEVEL_WEIGHTS[i] if lv in o.levels else 0.0 for i, lv in enumerate(LEVELS)] for o in OCCUPATIONS])
    / np.array([[sum(_LEVEL_WEIGHTS[LEVELS.index(lv)] for lv in o.levels)] for o in OCCUPATIONS]),
    axis=1,
)
_BASE_FOCUS_SHARE = 0.92  # a base's classes in its registry industry_focus; the rest other key industries

GROUPS = ("rural_migrant", "unemployed", "graduate", "disabled", "veteran", "low_income", "other")
_GROUP_WEIGHTS = {
    "village": (0.42, 0.06, 0.0, 0.05, 0.02, 0.28, 0.17),
    "station": (0.34, 0.20, 0.14, 0.03, 0.05, 0.04, 0.20),
    "base": (0.20, 0.20, 0.30, 0.02, 0.08, 0.02, 0.18),
}
_LOW_INCOME_OTHER_GROUPS = {"village": 0.15, "station": 0.02, "base": 0.01}
_GRADUATE, _VETERAN, _LOW_INCOME = (GROUPS.index(g) for g in ("graduate", "veteran", "low_income"))
# Age at a person's first class, in years. The upper bounds leave room for repeat classes over
# a long window while staying inside working age (women's base 55, men 60, both rising).
_MAX_AGE = {"male": 57.0, "female": 52.0}
_MIN_AGE = 18.0

RATINGS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
_ROW_RATING_P = np.array([0.60, 0.33, 0.05, 0.015, 0.005])
_ROW_RATING_BLANK = 0.03

# Address codes (first six ID digits): (code, weight) per origin; local = Yuhang/Linping.
_ADDRESS = {
    "local": (("330110", 0.6), ("330184", 0.3), ("330113", 0.1)),
    "hangzhou": (("330102", 1), ("330105", 1), ("330106", 1), ("330108", 1), ("330109", 2),
                 ("330111", 1), ("330112", 1), ("330122", 1), ("330127", 1), ("330182", 1)),
    "zhejiang": (("330302", 1), ("330326", 1), ("330424", 1), ("330521", 2), ("330602", 1),
                 ("330726", 1), ("330825", 1), ("331022", 1), ("331081", 1), ("331121", 1)),
    "migrant": (("341221", 2), ("341222", 2), ("341621", 2), ("340421", 1), ("342422", 1),
                ("340825", 1), ("360428", 2), ("361127", 2), ("360124", 1), ("361128", 1),
                ("411521", 1), ("510521", 1), ("421127", 1), ("522121", 1)),
}  # fmt: skip
_ORIGIN_WEIGHTS = {
    "village": (0.88, 0.04, 0.04, 0.04),
    "station": (0.50, 0.10, 0.15, 0.25),
    "base": (0.30, 0.20, 0.20, 0.30),
}
_ADDRESS_CODES = np.array([c for origin in _ADDRESS.values() for c, _ in origin])
_ADDRESS_P = {
    programme: np.concatenate(
        [
            np.array([w for _, w in _ADDRESS[o]], dtype=float) / sum(w for _, w in _ADDRESS[o]) * share
            for o, share in zip(_ADDRESS, shares, strict=True)
        ]
    )
    for programme, shares in _ORIGIN_WEIGHTS.items()
}

_SURNAMES = (
    "王", 7, "陈", 7, "李", 6, "张", 6, "刘", 4, "吴", 4, "徐", 4, "杨", 3, "黄", 3, "周", 3, "沈", 3,
    "赵", 2, "孙", 2, "朱", 2, "胡", 2, "何", 2, "林", 2, "郑", 2, "许", 2, "叶", 2, "陆", 2, "金", 2,
    "方", 2, "钱", 2, "俞", 2, "郭", 1, "高", 1, "罗", 1, "梁", 1, "谢", 1, "宋", 1, "唐", 1, "韩", 1,
    "冯", 1, "邓", 1, "曹", 1, "彭", 1, "曾", 1, "肖", 1, "田", 1, "董", 1, "袁", 1, "潘", 1, "蒋", 1,
    "蔡", 1, "余", 1, "杜", 1, "程", 1, "苏", 1, "魏", 1, "吕", 1, "丁", 1, "任", 1, "姚", 1, "卢", 1,
    "姜", 1, "钟", 1, "汪", 1, "范", 1, "章", 1, "楼", 1, "应", 1, "邵", 1, "戴", 1, "严", 1, "施", 1,
    "孔", 1, "傅", 1, "毛", 1, "倪", 1, "顾", 1, "盛", 0.5, "褚", 0.5, "虞", 0.5, "骆", 0.5, "来", 0.3,
)  # fmt: skip
_SURNAME = np.array(_SURNAMES[0::2])
_SURNAME_P = np.array(_SURNAMES[1::2], dtype=float) / sum(_SURNAMES[1::2])
_GIVEN = {
    "male": np.array(
        list(
            "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆旭宁龙林洋峰建国文志海东亮成兵锋晨阳博毅彬振家庆忠德良永荣祥春江树立新天子豪睿泽轩然"
        )
    ),
    "female": np.array(
        list(
            "芳娜敏静丽艳娟霞燕玲萍红梅琳莉雪婷慧倩颖洁佳琴云兰凤英华秀月丹璐瑶欣怡萱悦彤晶蕾薇琪露妍雯菲宁春晓珍美青玉娇"
        )
    ),
}

_MONTH_WEIGHTS = np.array([0.9, 0.45, 1.1, 1.1, 1.05, 1.0, 0.95, 0.9, 1.1, 0.9, 1.25, 1.3])  # mean 1

_PERSON_TIMES_PER_YEAR = {"village": (12.0, 55.0), "station": (430.0, 670.0), "base": (950.0, 1350.0)}
_UNDERPERFORMING_PERSON_TIMES = (430.0, 470.0)
_CLASS_SIZE = {"village": (10, 40), "station": (15, 60), "base": (15, 60)}
_PASS_RATE = {"village": (0.85, 0.98), "station": (0.88, 0.97), "base": (0.92, 0.96)}
_LOW_PASS_RATE = (0.83, 0.87)
_CLASS_PASS_SD = 0.03
_ASSESSED_SHARE = {"village": 0.85, "station": 0.96, "base": 0.97}
_REPEAT_SHARE = {"village": 0.20, "station": 0.12, "base": 0.15}
_MAX_CLASSES_PER_PERSON = 3  # Zhejiang: at most 3 subsidised trainings a person a year

_SURVEY_RESPONSES = (20, 80)
_SURVEY_SATISFIED = (0.90, 0.97)
_SURVEY_WORKER_SHARE = (0.60, 0.85)

# Finance: share of the provincial allocation spent, and how it splits by category.
_SPENT_SHARE = (0.86, 0.97)
_PROVINCIAL_SPLIT = {
    "village": {
        "training_subsidy": (0.35, 2, 4),
        "project_training": (0.30, 1, 3),
        "equipment": (0.25, 1, 2),
        "teacher_training": (0.10, 1, 1),
    },
    "station": {
        "equipment": (0.35, 2, 4),
        "project_training": (0.28, 3, 6),
        "training_subsidy": (0.20, 3, 6),
        "teacher_training": (0.08, 1, 2),
        "standard_development": (0.05, 1, 1),
        "high_skill_subsidy": (0.04, 1, 2),
    },
}  # fmt: skip  (category: share, fewest payments, most payments)
_BASE_EQUIPMENT_MULTIPLE = (2.05, 2.4)  # total equipment cost / subsidy allocation
_ROUTINE = {  # per month: probability of routine payments, how many at most, sources, categories, yuan
    "village": (0.3, 1, ("town", "self"), ("project_training", "training_subsidy", "other"), (800, 8000)),
    "station": (0.7, 2, ("town",), ("project_training", "training_subsidy", "other"), (2000, 25000)),
    "base": (0.8, 2, ("self",), ("teacher_training", "project_training", "other"), (5000, 60000)),
}
_INELIGIBLE_SHARE = (0.004, 0.02)  # of the provincial allocation, per planted payment
_INELIGIBLE_ITEMS = (("接待费", "餐饮管理"), ("工作餐费", "酒店管理"), ("办公用品采购", "办公用品"),
                     ("宣传横幅制作", "广告"), ("公务用车租赁", "汽车租赁"))  # fmt: skip
_EQUIPMENT_ITEMS = {
    "advanced_manufacturing": ("数控车床实训设备", "工业机器人实训工作站", "电工实训考核装置", "焊接实训设备"),
    "digital_economy": ("直播实训间设备", "电商实训软件", "计算机及网络设备", "人工智能实训平台"),
    "low_altitude": ("无人机实训设备", "无人机模拟飞行系统", "无人机装调实训台", "飞行训练场地设施"),
    "elderly_childcare": ("养老护理实训模型", "婴幼儿照护实训设备", "智能护理床", "康复训练器材"),
    "other": ("多媒体教学设备", "烹饪实训设备", "茶艺实训器具", "共富工坊培训设备"),
}
_SUPPLIER_BUSINESS = {
    "advanced_manufacturing": ("数控设备", "智能装备", "机电设备"),
    "digital_economy": ("信息技术", "数字科技", "网络科技"),
    "low_altitude": ("航空科技", "无人机科技", "智能飞行技术"),
    "elderly_childcare": ("康复器材", "健康科技", "教育装备"),
    "other": ("教学设备", "商贸", "厨房设备"),
}
_BRANDS = (
    "华睿",
    "启航",
    "鼎新",
    "翼飞",
    "智联",
    "恒达",
    "云帆",
    "中钰",
    "博远",
    "天晟",
    "良辰",
    "星驰",
    "远景",
    "嘉禾",
    "众诚",
    "和鑫",
    "汇通",
    "瑞丰",
    "蓝海",
    "新禾",
    "晨曦",
    "明途",
    "禾益",
    "卓远",
)
_COLLEGES = ("杭州职业技术学院", "浙江育英职业技术学院", "杭州市余杭区职业高级中学", "浙江长征职业技术学院")
_PERSONS_PAYEE = "学员(批量发放)"

_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_CHECK_ALPHABET = np.array(list("0123456789X"))

# Random streams: one Generator per (purpose, site), so sites do not disturb each other. The
# fraud patterns draw from streams of their own (_PLANT, then a number per pattern), so turning
# one on leaves what the others draw unchanged.
_ROSTER, _PERSONS, _FINANCE, _SURVEY, _OUTCOMES, _ROW_MESS, _FILE, _MISSING, _GLOBAL, _PLANT = range(10)
_P_OVER_YEARLY, _P_REPEAT, _P_NEAR, _P_LEDGER, _P_VOUCHER, _P_INVOICE, _P_PERIOD, _P_FIX, _P_BURST, _P_UNIFORM = range(
    10
)

# Fraud patterns: what a planted row or class is (``_Roster.row_plant`` / ``cls_plant``; 0 = none).
_ROW_OVER_YEARLY, _ROW_REPEAT, _ROW_BURST = 1, 2, 3
_CLS_BURST, _CLS_UNIFORM = 1, 2
_YEARLY_LIMIT = _MAX_CLASSES_PER_PERSON  # the over-yearly person attends one class more than this
_BURST_CLASSES = (4, 6)  # classes added in the burst (times the scale when it is above 1)
_BURST_CLASS_SIZE = (40, 60)
_NEAR_RETIREMENT_DAYS = (1, 20)  # class start this many days after the retirement date
_OUT_OF_PERIOD_DAYS = (1, 20)  # payment date this many days after the implementation period
_OVER_CLAIM_MULTIPLE = (1.5, 1.85)  # over-claiming base: equipment cost / subsidy paid
_OVERPAID_MULTIPLE = (1.2, 1.5)  # overpaid station: training money / (limit x person-times)
_CLEAN_TRAINING_SHARE = 0.9  # clean site-years keep training money below 90% of the limit
_BURST_MARGIN = 0.98  # clean certificate windows stay below 98% of the burst check's multiple of usual
_SCALE_XLSX_LIMIT = 10.0  # at this scale and above every file is CSV


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class SampleOptions:
    """What to generate: window, size, seed and the rate of each planted pattern."""

    seed: int = 20251218
    start: str = "2025-07"
    end: str = "2026-12"
    scale: float = 1.0
    gbk_rate: float = 0.2
    bom_rate: float = 0.25
    xlsx_rate: float = 0.2
    english_header_rate: float = 0.1
    invalid_id_rate: float = 0.003
    out_of_age_rate: float = 0.002
    missing_month_rate: float = 0.02
    resubmission_rate: float = 0.04
    late_rate: float = 0.08
    cross_site_duplicate_rate: float = 0.002
    ineligible_spending_rate: float = 0.03
    noise_rate: float = 0.01
    date_style_rate: float = 0.15
    over_yearly_limit_rate: float = 0.001
    repeat_occupation_level_rate: float = 0.001
    near_retirement_rate: float = 0.001
    uniform_class_rate: float = 0.01
    duplicate_invoice_rate: float = 0.01
    duplicate_voucher_rate: float = 0.006
    out_of_period_payment_rate: float = 0.1
    underperforming_station: str | None = "S02"
    low_pass_base: str | None = "B02"
    certificate_burst_site: str | None = "S07"
    base_over_claim: str | None = "B01"
    training_overpaid_site: str | None = "S05"

    @classmethod
    def clean(cls, **overrides: Any) -> SampleOptions:
        """Every rate 0 and no planted site, then ``overrides``."""
        values: dict[str, Any] = {f.name: 0.0 for f in fields(cls) if f.name.endswith("_rate")}
        values.update(dict.fromkeys(_SITE_OPTIONS))
        values.update(overrides)
        return cls(**values)

    @property
    def rates(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self) if f.name.endswith("_rate")}

    def check(self, plan: Plan) -> None:
        """Raise ValueError for options that cannot be generated."""
        if _month_index(self.start) > _month_index(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        for name, value in self.rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.gbk_rate + self.bom_rate > 1.0:
            raise ValueError("gbk_rate + bom_rate must not exceed 1 (they share the CSV files)")
        for name, (label, programmes) in _SITE_OPTIONS.items():
            code = getattr(self, name)
            if code is None:
                continue
            site = plan.sites_by_code.get(code)
            if site is None or site.programme not in programmes:
                raise ValueError(f"{label} {code!r} is not a registered {' or '.join(programmes)}")


# Options naming a site: (what the site is, the programmes it may belong to).
_SITE_OPTIONS = {
    "underperforming_station": ("underperforming station", ("station",)),
    "low_pass_base": ("low-pass base", ("base",)),
    "certificate_burst_site": ("certificate-burst site", ("station", "base")),
    "base_over_claim": ("over-claiming base", ("base",)),
    "training_overpaid_site": ("training-overpaid station", ("station",)),
}


# ------------------------------------------------------------------------------ months
# A month is an int: months since 1970-01, numpy's datetime64[M] representation.


def _month_index(text: str) -> int:
    try:
        year, month = (int(p) for p in text.split("-"))
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, got {text!r}") from None
    if not 1 <= month <= 12 or len(text) != 7:
        raise ValueError(f"month must be YYYY-MM, got {text!r}")
    return (year - 1970) * 12 + month - 1


def _month_text(month: int) -> str:
    return f"{_year(month):04d}-{_month_no(month):02d}"


def _year(month: int) -> int:
    return 1970 + month // 12


def _month_no(month: int) -> int:
    return month % 12 + 1


def _first_day(months: np.ndarray | int) -> np.ndarray:
    return np.asarray(months, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]")


def _days_in(months: np.ndarray | int) -> np.ndarray:
    return (_first_day(np.asarray(months) + 1) - _first_day(months)).astype(np.int64)


def _random_weekdays(months: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random working day (Monday to Friday) in each month."""
    days = _first_day(months) + np.floor(rng.random(len(months)) * _days_in(months)).astype(np.int64)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    first, last = _first_day(months), _first_day(months + 1) - 1
    sat = np.where(days - 1 >= first, days - 1, days + 2)
    sun = np.where(days + 1 <= last, days + 1, days - 2)
    return np.where(weekday == 5, sat, np.where(weekday == 6, sun, days))


def _format_dates(days: np.ndarray, style: str) -> np.ndarray:
    """``iso`` 2026-03-05, ``slash`` 2026/3/5 or ``zh`` 2026年3月5日."""
    if style == "iso":
        return np.datetime_as_string(days, unit="D")
    months = days.astype("datetime64[M]").astype(np.int64)
    y = (1970 + months // 12).astype(str)
    m = (months % 12 + 1).astype(str)
    d = ((days - _first_day(months)).astype(np.int64) + 1).astype(str)
    sep = ("/", "/", "") if style == "slash" else ("年", "月", "日")
    return functools.reduce(np.strings.add, (y, sep[0], m, sep[1], d, sep[2]))


def _zfill(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded text (numpy's zfill rejects empty arrays)."""
    return np.strings.zfill(values.astype(str), width) if len(values) else np.array([], dtype=f"U{width}")


def _active_month(site: Site) -> int:
    return (site.active_from.year - 1970) * 12 + site.active_from.month - 1


def _rng(seed: int, *purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, *purpose])


# ------------------------------------------------------------------------------ rosters


@dataclass
class _Roster:
    """Classes and trainee rows of one site over the window; persons by (home site, serial)."""

    site: Site
    site_no: int
    cls_month: np.ndarray
    cls_start: np.ndarray  # datetime64[D]
    cls_end: np.ndarray
    cls_occ: np.ndarray
    cls_level: np.ndarray
    cls_hours: np.ndarray
    cls_id: np.ndarray
    cls_course: np.ndarray
    row_class: np.ndarray
    row_home: np.ndarray  # site_no of the pool the row's person comes from
    row_serial: np.ndarray  # person serial within that pool
    row_assessed: np.ndarray
    row_passed: np.ndarray
    row_rating: np.ndarray  # index into RATINGS, -1 = blank
    row_cert: np.ndarray  # certificate serial within site and year, -1 = none
    first_row: np.ndarray  # per own serial: the row whose class defines the person
    row_cross: np.ndarray  # planted cross-site duplicate (either side)
    row_person: np.ndarray  # global person index, set once the pools exist
    row_bad_check: np.ndarray  # wrong check character to write, "" = none
    row_plant: np.ndarray  # fraud pattern the row belongs to (_ROW_*), 0 = none
    cls_plant: np.ndarray  # fraud pattern the class belongs to (_CLS_*), 0 = none

    @property
    def row_month(self) -> np.ndarray:
        return self.cls_month[self.row_class]


def _occupation_weights(site: Site, rng: np.random.Generator) -> np.ndarray:
    """This site's mix of occupations: the programme's weights times a site preference."""
    if site.programme == "village":
        w = np.array([o.village_weight for o in OCCUPATIONS], dtype=float)
    elif site.programme == "station":
        w = np.array([o.station_weight for o in OCCUPATIONS], dtype=float)
    else:  # a base: its focus industry, a little of the other key industries, nothing else
        key = np.array([0.0 if o.industry == "other" else float(o.station_weight) for o in OCCUPATIONS])
        focus = site.industry_focus == _OCC_INDUSTRY
        w = np.where(
            focus, key / key[focus].sum() * _BASE_FOCUS_SHARE, key / key[~focus].sum() * (1 - _BASE_FOCUS_SHARE)
        )
    w = w * rng.gamma(1.5, 1.0, len(w))
    return w / w.sum()


def _split_classes(total: float, size_range: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    lo, hi = size_range
    n = max(1, int(round(total / ((lo + hi) / 2))))
    raw = rng.uniform(lo, hi, n)
    return np.clip(np.rint(raw * total / raw.sum()), lo, hi).astype(np.int64)


def _class_sizes(
    site: Site, months: list[int], options: SampleOptions, focus_year: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """(class month, class size) for the site's window months, and the pass rate per year."""
    active = _active_month(site)
    years = sorted({_year(m) for m in months})
    cls_month: list[np.ndarray] = []
    cls_size: list[np.ndarray] = []
    pass_rate: dict[int, float] = {}
    size_range = _CLASS_SIZE[site.programme]
    for year in years:
        year_months = [m for m in range((year - 1970) * 12, (year - 1970) * 12 + 12) if m >= active]
        lo, hi = _PERSON_TIMES_PER_YEAR[site.programme]
        if site.site_code == options.underperforming_station and year == focus_year:
            lo, hi = _UNDERPERFORMING_PERSON_TIMES
        per_year = rng.uniform(lo, hi) * len(year_months) / 12 * options.scale
        lo, hi = (
            _LOW_PASS_RATE
            if site.site_code == options.low_pass_base and year == focus_year
            else _PASS_RATE[site.programme]
        )
        pass_rate[year] = float(rng.uniform(lo, hi))
        weights = _MONTH_WEIGHTS[[_month_no(m) - 1 for m in year_months]]
        if site.programme == "village":
            # A village runs a few classes a year, in months of its own choosing.
            sizes = _split_classes(per_year, size_range, rng)
            when = np.sort(rng.choice(year_months, size=len(sizes), p=weights / weights.sum()))
            keep = np.isin(when, months)
            cls_month.append(when[keep])
            cls_size.append(sizes[keep])
            continue
        for m, w in zip(year_months, weights, strict=True):
            sizes = _split_classes(per_year * w / weights.sum(), size_range, rng)
            if m in months:
                cls_month.append(np.full(len(sizes), m, dtype=np.int64))
                cls_size.append(sizes)
    return np.concatenate(cls_month), np.concatenate(cls_size), pass_rate


def _build_roster(
    site: Site,
    site_no: int,
    months: list[int],
    options: SampleOptions,
    focus_year: int,
    rng: np.random.Generator,
    burst_rule: tuple[int, float, int] = (3, 5.0, 100),
) -> _Roster:
    occ_weights = _occupation_weights(site, rng)
    cls_month, cls_size, pass_rate = _class_sizes(site, months, options, focus_year, rng)
    n_cls = len(cls_month)
    occ = rng.choice(len(OCCUPATIONS), size=n_cls, p=occ_weights)
    level = np.argmax(_OCC_LEVEL_CUM[occ] > rng.random(n_cls)[:, None], axis=1)
    lo, hi = _OCC_HOURS[occ, 0], _OCC_HOURS[occ, 1]
    hours = (lo + np.floor(rng.random(n_cls) * ((hi - lo) // 4 + 1)) * 4).astype(np.int64)
    duration = np.clip(np.ceil(hours / rng.choice([4, 6, 8], size=n_cls)), 1, 28).astype(np.int64)
    dim = _days_in(cls_month)
    earliest = -np.minimum(5, duration - 1)  # a class may start a few days before its month
    offset = earliest + np.floor(rng.random(n_cls) * (dim - duration - earliest + 1)).astype(np.int64)
    start = _first_day(cls_month) + offset
    end = start + duration - 1
    seq = np.arange(n_cls) - np.searchsorted(cls_month, cls_month, side="left") + 1
    cls_id = np.array(
        [f"{site.site_code}-{_month_text(m).replace('-', '')}-{k:03d}" for m, k in zip(cls_month, seq, strict=True)]
    )
    cls_course = _course_names(site, occ, level, rng)

    row_class = np.repeat(np.arange(n_cls), cls_size)
    n = len(row_class)
    cls_pass = np.clip(
        np.array([pass_rate[_year(m)] for m in cls_month]) + rng.normal(0, _CLASS_PASS_SD, n_cls), 0.5, 1.0
    )
    assessed = rng.random(n) < _ASSESSED_SHARE[site.programme]
    passed = assessed & (rng.random(n) < cls_pass[row_class])
    rating = np.where(rng.random(n) < _ROW_RATING_BLANK, -1, rng.choice(len(RATINGS), size=n, p=_ROW_RATING_P)).astype(
        np.int64
    )
    cert = _certificate_serials(cls_month[row_class], passed)
    _spread_class_ends(site, cls_month, start, end, np.bincount(row_class, weights=passed, minlength=n_cls), burst_rule)
    serial, first_row = _assign_persons(
        site,
        cls_month[row_class],
        start[row_class],
        end[row_class],
        occ[row_class] * len(LEVELS) + level[row_class],
        rng,
    )
    return _Roster(
        site=site, site_no=site_no, cls_month=cls_month, cls_start=start, cls_end=end, cls_occ=occ,
        cls_level=level, cls_hours=hours, cls_id=cls_id, cls_course=cls_course, row_class=row_class,
        row_home=np.full(n, site_no, dtype=np.int64), row_serial=serial, row_assessed=assessed,
        row_passed=passed, row_rating=rating, row_cert=cert, first_row=first_row,
        row_cross=np.zeros(n, dtype=bool), row_person=np.full(n, -1, dtype=np.int64), row_bad_check=np.full(n, ""),
        row_plant=np.zeros(n, dtype=np.int8), cls_plant=np.zeros(n_cls, dtype=np.int8),
    )  # fmt: skip


def _spread_class_ends(
    site: Site, cls_month: np.ndarray, start: np.ndarray, end: np.ndarray, passes: np.ndarray,
    rule: tuple[int, float, int],
) -> None:  # fmt: skip
    """Move classes (whole, within their month) out of windows where chance put too many passes.

    ``rule`` is the certificate-burst check's (window days, multiple of usual, minimum passes): the
    passes of a window of that many days (by class end date; a window belongs to the year of its
    first day and may run into the next) make a burst when they exceed the multiple of that
    year's usual for so many days (passes of the year x 12 / (365 x months active) x days) and
    reach the minimum. While some window is one (or within ``_BURST_MARGIN`` of one), the class
    ending in it whose move helps most is moved (start and end by the same days, staying in its
    month), so the site's clean calendar keeps no burst. Changes ``start`` and ``end`` in place; nothing
    moves at the default scale, where no site passes that many trainees in a few days.
    """
    window, multiple, least = rule
    if passes.sum() < least:
        return
    first = _first_day(cls_month)
    last = _first_day(cls_month + 1) - 1
    lowest = np.maximum(first, first - 5 + (end - start).astype(np.int64))  # the start at most 5 days before the month
    years = end.astype("datetime64[Y]")
    origin = years.min().astype("datetime64[D]")
    n_days = int(((years.max() + 1).astype("datetime64[D]") - origin).astype(np.int64))
    allowed = np.empty(n_days + window)  # what a window starting on each day may hold
    for year in range(int(years.min().astype(np.int64)), int(years.max().astype(np.int64)) + 1):
        lo, hi = ((np.datetime64(y, "Y").astype("datetime64[D]") - origin).astype(np.int64) for y in (year, year + 1))
        total = float(passes[years.astype(np.int64) == year].sum())
        usual = total * 12 / (365 * (site.months_active(1970 + year) or 12)) * window
        allowed[lo:hi] = max(_BURST_MARGIN * multiple * usual, least - 1)
    allowed[n_days:] = np.inf
    day = (end - origin).astype(np.int64)
    counts = np.bincount(day, weights=passes, minlength=n_days + window)
    ones = np.ones(window)
    for _ in range(4 * len(passes)):
        excess = np.convolve(counts, ones)[window - 1 :][: len(allowed)] - allowed  # windows starting on each day
        worst = int(np.argmax(excess))
        if excess[worst] <= 0:
            break
        best = None
        for c in sorted(
            np.flatnonzero((day >= worst) & (day < worst + window) & (passes > 0)), key=lambda c: -passes[c]
        ):
            counts[day[c]] -= passes[c]
            targets = np.arange((lowest[c] - origin).astype(np.int64), (last[c] - origin).astype(np.int64) + 1)
            after = [_worst_with(counts, allowed, int(t), float(passes[c]), window) for t in targets]
            counts[day[c]] += passes[c]
            k = int(np.argmin(after))
            if after[k] < excess[worst] and (best is None or after[k] < best[2]):
                best = (c, int(targets[k]), after[k])
        if best is None:
            break
        c, target, _ = best
        counts[day[c]] -= passes[c]
        counts[target] += passes[c]
        start[c] += target - day[c]
        end[c] += target - day[c]
        day[c] = target


def _worst_with(counts: np.ndarray, allowed: np.ndarray, day: int, passes: float, window: int) -> float:
    """The largest excess over ``allowed`` of the windows holding ``day`` once ``passes`` end on it."""
    lo = max(0, day - window + 1)
    part = counts[lo : day + window].copy()
    part[day - lo] += passes
    sums = np.convolve(part, np.ones(window), mode="valid")  # windows starting on lo, lo + 1, ...
    return float(np.max(sums - allowed[lo : lo + len(sums)]))


def _certificate_serials(row_month: np.ndarray, passed: np.ndarray) -> np.ndarray:
    """Certificate serial per row: passed rows numbered in row order within each year, else -1."""
    row_year = 1970 + row_month // 12
    cert = np.full(len(row_month), -1, dtype=np.int64)
    for year in np.unique(row_year):
        sel = passed & (row_year == year)
        cert[sel] = np.arange(1, sel.sum() + 1)
    return cert


def _course_names(site: Site, occ: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    level_zh = {"primary": "初级", "intermediate": "中级", "senior": "高级", "technician": "技师"}
    patterns = ("{o}({l})职业技能培训", "{o}{l}技能提升培训班", "{o}({l})项目制培训")
    prefix = "共富工坊·" if site.programme == "village" else ""
    picks = rng.integers(0, len(patterns), len(occ))
    names = []
    for o, lv, k in zip(occ, level, picks, strict=True):
        name = OCCUPATIONS[o].name
        if LEVELS[lv] == "special_skill":
            names.append(f"{prefix}{name}专项能力培训")
        else:
            names.append(prefix + patterns[k].format(o=name, l=level_zh[LEVELS[lv]]))
    return np.array(names)


def _assign_persons(
    site: Site, month: np.ndarray, start: np.ndarray, end: np.ndarray, skill: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Person serial per row, with realistic repeat attendance, and each serial's first row.

    A share of rows are returning trainees: people first seen in an earlier month. A repeat is
    turned into a new person when it would break a rule a clean site keeps (overlapping
    classes, the same occupation and level twice, more than three classes).
    """
    n = len(month)
    first_in_month = np.searchsorted(month, month, side="left")
    is_rep = rng.random(n) < _REPEAT_SHARE[site.programme]
    pick = rng.random(n)
    new_before = np.concatenate([[0], np.cumsum(~is_rep)])[first_in_month]
    is_rep &= new_before > 0
    new_before = np.concatenate([[0], np.cumsum(~is_rep)])[first_in_month]
    serial = np.where(is_rep, np.floor(pick * new_before).astype(np.int64), np.cumsum(~is_rep) - 1)
    n_persons = int((~is_rep).sum())
    while True:
        order = np.lexsort((np.arange(n), serial))
        s, pos = serial[order], np.arange(n)
        group_start = np.searchsorted(s, s, side="left")
        rank = pos - group_start
        conflict = rank >= _MAX_CLASSES_PER_PERSON
        for back in (1, 2):
            has = rank >= back
            cur, prev = order[has], order[pos[has] - back]
            clash = (start[cur] <= end[prev]) & (start[prev] <= end[cur]) | (skill[cur] == skill[prev])
            conflict[np.flatnonzero(has)[clash]] = True
        rows = np.sort(order[conflict])
        if not len(rows):
            break
        serial[rows] = n_persons + np.arange(len(rows))
        is_rep[rows] = False
        n_persons += len(rows)
    first_row = np.empty(n_persons, dtype=np.int64)
    new_rows = np.flatnonzero(~is_rep)
    first_row[serial[new_rows]] = new_rows
    return serial, first_row


def _plant_cross_site(rosters: list[_Roster], rate: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Put trainees of stations/bases into an overlapping class at another site, same ID."""
    if rate <= 0 or len(rosters) < 2:
        return []
    sizes = np.array([len(r.row_class) for r in rosters])
    source = [i for i, r in enumerate(rosters) if r.site.programme != "village" and sizes[i]]
    n_plant = int(rng.binomial(int(sizes[source].sum()), rate)) if source else 0
    refs = [np.bincount(r.row_serial, minlength=len(r.first_row)) for r in rosters]
    pairs: list[dict[str, Any]] = []
    for _ in range(n_plant):
        a = rosters[source[rng.choice(len(source), p=sizes[source] / sizes[source].sum())]]
        ra = int(rng.integers(len(a.row_class)))
        ca = a.row_class[ra]
        if a.row_cross[ra] or a.row_home[ra] != a.site_no:
            continue
        month, start, end = a.cls_month[ca], a.cls_start[ca], a.cls_end[ca]
        candidates = [
            (j, np.flatnonzero((r.cls_month == month) & (r.cls_start <= end) & (r.cls_end >= start)))
            for j, r in enumerate(rosters) if r is not a
        ]  # fmt: skip
        candidates = [(j, c) for j, c in candidates if len(c)]
        if not candidates:
            continue
        j, classes = candidates[int(rng.integers(len(candidates)))]
        b = rosters[j]
        cb = classes[int(rng.integers(len(classes)))]
        free = np.flatnonzero((b.row_class == cb) & ~b.row_cross & (b.row_home == b.site_no))
        free = free[refs[j][b.row_serial[free]] == 1]
        if not len(free):
            continue
        rb = free[int(rng.integers(len(free)))]
        refs[j][b.row_serial[rb]] -= 1
        b.row_home[rb], b.row_serial[rb] = a.site_no, a.row_serial[ra]
        a.row_cross[ra] = b.row_cross[rb] = True
        pairs.append({"period": _month_text(int(a.cls_month[ca])),
                      "site_a": a.site.site_code, "class_a": str(a.cls_id[ca]),
                      "site_b": b.site.site_code, "class_b": str(b.cls_id[cb])})  # fmt: skip
    return pairs


# ------------------------------------------------------------------------------ fraud patterns: rosters


def _missing_months(site_no: int, months: list[int], options: SampleOptions) -> set[int]:
    """The site-months whose roster and finance files the sample leaves out (``missing_month_rate``)."""
    rng = _rng(options.seed, site_no, _MISSING)
    return {m for m in months if rng.random() < options.missing_month_rate}


def _append_classes(r: _Roster, cls: dict[str, np.ndarray], rows: dict[str, np.ndarray]) -> None:
    """Add classes (``cls_*`` arrays) and their rows (``row_*`` arrays) at the end of a roster."""
    for name, values in {**cls, **rows}.items():
        setattr(r, name, np.concatenate([getattr(r, name), values]))


def _integrity_parameter(plan: Plan, check: str, name: str) -> Any:
    """A threshold of an integrity check, from the policy (the one place that sets it)."""
    return getattr(plan.policy.integrity_check(check), name)


def _plant_certificate_burst(
    r: _Roster, options: SampleOptions, focus_year: int, window: int, skip: set[int], rng: np.random.Generator
) -> dict[str, Any] | None:
    """Classes of the site ending within ``window`` days, everyone passed: a certificate mill."""
    in_year = np.unique(r.cls_month[1970 + r.cls_month // 12 == focus_year])
    in_year = in_year[~np.isin(in_year, sorted(skip))]
    if not len(in_year):
        return None
    month = int(in_year[int(rng.integers(len(in_year)))])
    n_cls = int(round(int(rng.integers(_BURST_CLASSES[0], _BURST_CLASSES[1] + 1)) * max(1.0, options.scale)))
    size = rng.integers(_BURST_CLASS_SIZE[0], _BURST_CLASS_SIZE[1] + 1, n_cls)
    first, dim = _first_day(month)[()], int(_days_in(month))
    window_start = first + int(rng.integers(0, dim - window + 1))
    end = window_start + rng.integers(0, window, n_cls)
    template = rng.choice(np.flatnonzero(r.cls_month // 12 == month // 12), n_cls)  # the site's courses that year
    occ, level, hours = r.cls_occ[template], r.cls_level[template], r.cls_hours[template]
    duration = np.clip(np.ceil(hours / rng.choice([4, 6, 8], size=n_cls)), 1, 28).astype(np.int64)
    start = np.maximum(end - duration + 1, first - 5)
    seq = int((r.cls_month == month).sum()) + 1 + np.arange(n_cls)
    ids = np.array([f"{r.site.site_code}-{_month_text(month).replace('-', '')}-{k:03d}" for k in seq])
    n_old, n = len(r.cls_month), int(size.sum())
    rating = np.where(rng.random(n) < _ROW_RATING_BLANK, -1, rng.choice(len(RATINGS), size=n, p=_ROW_RATING_P))
    serial = len(r.first_row) + np.arange(n)
    first_row = len(r.row_class) + np.arange(n)
    _append_classes(r, {
        "cls_month": np.full(n_cls, month, dtype=np.int64), "cls_start": start, "cls_end": end, "cls_occ": occ,
        "cls_level": level, "cls_hours": hours, "cls_id": ids, "cls_course": _course_names(r.site, occ, level, rng),
        "cls_plant": np.full(n_cls, _CLS_BURST, dtype=np.int8),
    }, {
        "row_class": np.repeat(n_old + np.arange(n_cls), size), "row_home": np.full(n, r.site_no, dtype=np.int64),
        "row_serial": serial, "row_assessed": np.ones(n, dtype=bool), "row_passed": np.ones(n, dtype=bool),
        "row_rating": rating.astype(np.int64), "row_cert": np.full(n, -1, dtype=np.int64),
        "row_cross": np.zeros(n, dtype=bool), "row_person": np.full(n, -1, dtype=np.int64),
        "row_bad_check": np.full(n, ""), "row_plant": np.full(n, _ROW_BURST, dtype=np.int8),
    })  # fmt: skip
    r.first_row = np.concatenate([r.first_row, first_row])
    return {"site_code": r.site.site_code, "period": _month_text(month), "window_start": str(window_start),
            "window_end": str(window_start + window - 1), "certificates": n, "classes": ids.tolist()}  # fmt: skip


def _pick_compatible(
    candidates: np.ndarray, wanted: int, chosen: list[int], start: np.ndarray, end: np.ndarray, skill: np.ndarray,
    rng: np.random.Generator,
) -> list[int] | None:  # fmt: skip
    """``wanted`` classes among ``candidates``, sharing no day and no skill with ``chosen`` nor each other."""
    picks = list(chosen)
    for k in candidates[rng.permutation(len(candidates))[: 40 * wanted]]:
        k = int(k)
        if all(skill[k] != skill[c] and (start[k] > end[c] or end[k] < start[c]) for c in picks):
            picks.append(k)
            if len(picks) == len(chosen) + wanted:
                return picks[len(chosen) :]
    return None


def _plant_extra_classes(
    rosters: list[_Roster], options: SampleOptions, skip: dict[int, set[int]]
) -> tuple[list[dict[str, Any]], list[list[list[str]]]]:
    """Over-yearly and repeat persons: rows of trainees seen nowhere else are given to them.

    The planted person is a trainee with a single row; each extra class they attend takes the
    row of another single trainee of that class (who then no longer appears), so row counts and
    class sizes stay as they were. Returns (over-yearly persons, repeat pairs) for the truth.
    """
    over_rate, repeat_rate = options.over_yearly_limit_rate, options.repeat_occupation_level_rate
    if (over_rate <= 0 and repeat_rate <= 0) or not rosters:
        return [], []
    index = {r.site_no: j for j, r in enumerate(rosters)}
    refs = [np.zeros(len(r.first_row), dtype=np.int64) for r in rosters]
    for r in rosters:
        for home in np.unique(r.row_home):
            sel = r.row_serial[r.row_home == home]
            refs[index[int(home)]] += np.bincount(sel, minlength=len(refs[index[int(home)]]))
    # Free rows: the only row of a person of the site's own pool, planted nothing, in a written month.
    free = []
    for j, r in enumerate(rosters):
        own = (r.row_home == r.site_no) & ~r.row_cross & (r.row_plant == 0)
        own[own] = refs[j][r.row_serial[own]] == 1
        free.append(own & ~np.isin(r.cls_month, sorted(skip[r.site_no]))[r.row_class])
    # Every class of every site, one table.
    offset = np.cumsum([0] + [len(r.cls_month) for r in rosters])
    cj = np.concatenate([np.full(len(r.cls_month), j) for j, r in enumerate(rosters)])
    start = np.concatenate([r.cls_start for r in rosters])
    end = np.concatenate([r.cls_end for r in rosters])
    skill = np.concatenate([r.cls_occ * len(LEVELS) + r.cls_level for r in rosters])
    year = np.concatenate([1970 + r.cls_month // 12 for r in rosters])
    start_year = start.astype("datetime64[Y]").astype(np.int64) + 1970
    keyed = np.concatenate([np.full(len(r.cls_month), r.site.programme != "village") for r in rosters])
    lo = np.concatenate([np.searchsorted(r.row_class, np.arange(len(r.cls_month))) for r in rosters])
    hi = np.concatenate([np.searchsorted(r.row_class, np.arange(len(r.cls_month)), side="right") for r in rosters])
    free_count = np.concatenate(
        [np.bincount(r.row_class[f], minlength=len(r.cls_month)) for r, f in zip(rosters, free, strict=True)]
    )

    def take(k: int, tag: int, person: tuple[int, int] | None, rng: np.random.Generator) -> tuple[int, int]:
        """A free row of class ``k``, now ``person``'s (home site_no, serial) or kept as the subject."""
        j = int(cj[k])
        r = rosters[j]
        rows = lo[k] + np.flatnonzero(free[j][lo[k] : hi[k]])
        row = int(rows[int(rng.integers(len(rows)))])
        free[j][row] = False
        free_count[k] -= 1
        r.row_plant[row] = tag
        if person is not None:
            refs[j][r.row_serial[row]] -= 1
            r.row_home[row], r.row_serial[row] = person
        return j, row

    def described(classes: list[int]) -> list[list[str]]:
        named = [
            (start[k], rosters[cj[k]].site.site_code, str(rosters[cj[k]].cls_id[k - offset[cj[k]]])) for k in classes
        ]
        return [[site, class_id] for _, site, class_id in sorted(named)]

    def subjects(keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Classes of free rows where the planted persons come from, one entry per row, shuffled."""
        rows = np.repeat(np.arange(len(free_count)), np.where(keep, free_count, 0))
        return rows[rng.permutation(len(rows))]

    over: list[dict[str, Any]] = []
    rng = _rng(options.seed, 0, _PLANT, _P_OVER_YEARLY)
    people = sum(int((refs[j] > 0).sum()) for j, r in enumerate(rosters) if r.site.programme != "village")
    wanted = int(rng.binomial(people, over_rate)) if over_rate > 0 else 0
    for c in subjects(keyed & (start_year == year), rng) if wanted else []:
        if len(over) == wanted:
            break
        if not free_count[c]:
            continue
        c, y = int(c), int(year[c])
        fits = keyed & (year == y) & (start_year == y) & (free_count > 0)
        home = cj == cj[c]
        picks = None
        for scope in (home, None) if rng.random() < 0.5 else (None,):
            candidates = np.flatnonzero(fits if scope is None else fits & scope)
            picks = _pick_compatible(candidates, _YEARLY_LIMIT, [c], start, end, skill, rng)
            if picks is not None:
                break
        if picks is None:
            continue
        j, row = take(c, _ROW_OVER_YEARLY, None, rng)
        person = (rosters[j].site_no, int(rosters[j].row_serial[row]))
        for k in picks:
            take(k, _ROW_OVER_YEARLY, person, rng)
        classes = described([c, *picks])
        over.append({"site_code": classes[-1][0], "year": y, "classes": classes})

    repeat: list[list[list[str]]] = []
    rng = _rng(options.seed, 0, _PLANT, _P_REPEAT)
    people = sum(int((x > 0).sum()) for x in refs)
    wanted = int(rng.binomial(people, repeat_rate)) if repeat_rate > 0 else 0
    for c in subjects(np.ones(len(free_count), dtype=bool), rng) if wanted else []:
        if len(repeat) == wanted:
            break
        if not free_count[c]:
            continue
        c = int(c)
        fits = (skill == skill[c]) & (free_count > 0) & ((start > end[c]) | (end < start[c]))
        if rng.random() < 0.5 and (fits & (cj == cj[c])).any():
            fits &= cj == cj[c]
        candidates = np.flatnonzero(fits)
        if not len(candidates):
            continue
        k = int(candidates[int(rng.integers(len(candidates)))])
        j, row = take(c, _ROW_REPEAT, None, rng)
        take(k, _ROW_REPEAT, (rosters[j].site_no, int(rosters[j].row_serial[row])), rng)
        repeat.append(described([c, k]))
    return over, repeat


def _plant_uniform_classes(
    rosters: list[_Roster], rate: float, min_size: int, skip: dict[int, set[int]], rng: np.random.Generator
) -> None:
    """Classes in which everyone is assessed, passes and gives the same satisfaction answer."""
    if rate <= 0:
        return
    eligible = [
        (np.bincount(r.row_class, minlength=len(r.cls_month)) >= min_size) & (r.cls_plant == 0)
        & ~np.isin(r.cls_month, sorted(skip[r.site_no]))
        for r in rosters
    ]  # fmt: skip
    counts = np.array([int(e.sum()) for e in eligible])
    if not counts.sum():
        return
    picks = np.sort(rng.choice(int(counts.sum()), size=int(rng.binomial(int(counts.sum()), rate)), replace=False))
    answers = np.where(rng.random(len(picks)) < 0.75, RATINGS.index("very_satisfied"), RATINGS.index("satisfied"))
    bounds = np.cumsum(np.concatenate([[0], counts]))
    for j, r in enumerate(rosters):
        mine = (picks >= bounds[j]) & (picks < bounds[j + 1])
        if not mine.any():
            continue
        classes = np.flatnonzero(eligible[j])[picks[mine] - bounds[j]]
        r.cls_plant[classes] = _CLS_UNIFORM
        answer = np.full(len(r.cls_month), -1, dtype=np.int64)
        answer[classes] = answers[mine]
        rows = answer[r.row_class] >= 0
        r.row_assessed[rows] = r.row_passed[rows] = True
        r.row_rating[rows] = answer[r.row_class[rows]]


def _break_uniform_classes(r: _Roster, min_size: int) -> None:
    """Change one answer in any unplanted class that chance made uniform (everyone passed, one answer)."""
    n_cls = len(r.cls_month)
    size = np.bincount(r.row_class, minlength=n_cls)
    ok = r.row_assessed & r.row_passed & (r.row_rating >= 0)
    failing = np.bincount(r.row_class, weights=~ok, minlength=n_cls)
    low = np.full(n_cls, len(RATINGS), dtype=np.int64)
    high = np.full(n_cls, -1, dtype=np.int64)
    np.minimum.at(low, r.row_class, r.row_rating)
    np.maximum.at(high, r.row_class, r.row_rating)
    uniform = (size >= min_size) & (failing == 0) & (low == high) & (r.cls_plant != _CLS_UNIFORM)
    last = np.searchsorted(r.row_class, np.flatnonzero(uniform), side="right") - 1  # rows are grouped by class
    r.row_rating[last] = np.where(r.row_rating[last] == 0, 1, 0)


# ------------------------------------------------------------------------------ persons


@dataclass
class _People:
    """Every generated person, indexed globally; each site's pool is a contiguous slice."""

    name: np.ndarray
    first17: np.ndarray
    check: np.ndarray
    group: np.ndarray
    low_income: np.ndarray
    out_of_age: np.ndarray
    near_retirement: np.ndarray


def _retired_births(
    start: np.ndarray, male: np.ndarray, female_base: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(found, birth date) of persons whose statutory retirement date falls 1-20 days before ``start``.

    The retirement date is the one ``yuhang_skills.intake.identity`` computes (the 2025 reform, women on
    ``female_base``), so the rule is the pipeline's: for a wanted retirement date, every birth
    month that could lead to it is tried and the one that does is kept (a retirement month the
    reform skips gets another number of days).
    """
    n = len(start)
    found = np.zeros(n, dtype=bool)
    birth = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    delays = np.arange(0, 61)  # months the reform adds: at most 36 (men, women 55) or 60 (women 50)
    lo, hi = _NEAR_RETIREMENT_DAYS
    for _ in range(4 * (hi - lo + 1)):
        todo = np.flatnonzero(~found)
        if not len(todo):
            break
        retire = start[todo] - rng.integers(lo, hi + 1, len(todo))
        month = retire.astype("datetime64[M]").astype(np.int64)
        day = (retire - _first_day(month)).astype(np.int64) + 1
        base = np.where(male[todo], 60 * 12, female_base * 12)
        born_month = month[:, None] - base[:, None] - delays[None, :]
        candidate = _first_day(born_month) + (day[:, None] - 1)
        fits = day[:, None] <= _days_in(born_month)
        status = working_age_status(
            pd.Series(candidate.ravel()), pd.Series(np.repeat(np.where(male[todo], "M", "F"), len(delays))),
            pd.Series(np.repeat(start[todo], len(delays))), female_base=female_base,
        )  # fmt: skip
        retired = status["retirement_date"].to_numpy("datetime64[D]").reshape(candidate.shape)
        hit = fits & (retired == retire[:, None]) & ~status["in_working_age"].to_numpy(bool).reshape(candidate.shape)
        ok = hit.any(axis=1)
        found[todo[ok]] = True
        birth[todo[ok]] = candidate[ok, np.argmax(hit[ok], axis=1)]
    return found, birth


def _person_pool(
    r: _Roster, single: np.ndarray, options: SampleOptions, female_base: int, rng: np.random.Generator,
    near_rng: np.random.Generator,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Attributes of a site's persons; ``single`` marks persons with exactly one row anywhere."""
    rate = options.out_of_age_rate
    programme = r.site.programme
    p = len(r.first_row)
    cls = r.row_class[r.first_row]
    start = r.cls_start[cls]
    group = rng.choice(len(GROUPS), size=p, p=np.array(_GROUP_WEIGHTS[programme]) / sum(_GROUP_WEIGHTS[programme]))
    p_male = np.where(group == _VETERAN, np.maximum(_OCC_MALE[r.cls_occ[cls]], 0.9), _OCC_MALE[r.cls_occ[cls]])
    male = rng.random(p) < p_male
    top = np.where(male, _MAX_AGE["male"], _MAX_AGE["female"])
    lo = np.select([group == _GRADUATE, group == _VETERAN], [21.0, 22.0], _MIN_AGE)
    hi = np.select([group == _GRADUATE, group == _VETERAN], [24.0, 45.0], top)
    age_days = np.floor((lo + (hi - lo) * rng.beta(2.0, 2.5, p)) * 365.25).astype(np.int64)
    birth = start - age_days
    # Planted: minors of 14-15, or people born long before any retirement age still applies.
    n_rows = len(r.row_class)
    share = min(1.0, rate * n_rows / max(1, int(single.sum())))
    out = single & (rng.random(p) < share)
    minor = rng.random(p) < 0.4
    minor_birth = start - np.floor(rng.uniform(14.05, 15.9, p) * 365.25).astype(np.int64)
    old_from = np.where(male, np.datetime64("1955-01-01"), np.datetime64("1958-01-01"))
    old_birth = old_from + rng.integers(0, 8 * 365, p)
    birth = np.where(out, np.where(minor, minor_birth, old_birth), birth)
    # Planted: trainees who reached retirement age a few days before their class started.
    near = np.zeros(p, dtype=bool)
    if options.near_retirement_rate > 0:
        candidates = single & ~out
        share = min(1.0, options.near_retirement_rate * n_rows / max(1, int(candidates.sum())))
        near = candidates & (near_rng.random(p) < share)
        who = np.flatnonzero(near)
        found, near_birth = _retired_births(start[who], male[who], female_base, near_rng)
        near[who[~found]] = False
        birth[who[found]] = near_birth[found]
        group = np.where(near & (group == _GRADUATE), GROUPS.index("other"), group)  # no new graduates of 60
    address = rng.choice(_ADDRESS_CODES, size=p, p=_ADDRESS_P[programme])
    seq = rng.integers(1, 500, p) * 2 - male
    surname = rng.choice(_SURNAME, size=p, p=_SURNAME_P)
    given = np.where(male, rng.choice(_GIVEN["male"], p), rng.choice(_GIVEN["female"], p))
    second = np.where(male, rng.choice(_GIVEN["male"], p), rng.choice(_GIVEN["female"], p))
    given = np.where(rng.random(p) < 0.8, np.strings.add(given, second), given)
    low_income = (group == _LOW_INCOME) | (rng.random(p) < _LOW_INCOME_OTHER_GROUPS[programme])
    months = birth.astype("datetime64[M]").astype(np.int64)
    yyyymmdd = (
        (1970 + months // 12) * 10000 + (months % 12 + 1) * 100 + (birth - _first_day(months)).astype(np.int64) + 1
    )
    first17 = np.strings.add(np.strings.add(address, _zfill(yyyymmdd, 8)), _zfill(seq, 3))
    return {"name": np.strings.add(surname, given), "first17": first17, "group": group, "low_income": low_income,
            "out_of_age": out, "male": male, "near_retirement": near}  # fmt: skip


def _build_people(rosters: list[_Roster], options: SampleOptions, female_base: int) -> _People:
    refs = {r.site_no: np.zeros(len(r.first_row), dtype=np.int64) for r in rosters}
    for r in rosters:
        for home in np.unique(r.row_home):
            np.add.at(refs[int(home)], r.row_serial[r.row_home == home], 1)
    # A burst's trainees are only its own: they are neither out of age nor near retirement.
    pools = [
        _person_pool(r, (refs[r.site_no] == 1) & (r.row_plant[r.first_row] != _ROW_BURST), options, female_base,
                     _rng(options.seed, r.site_no, _PERSONS), _rng(options.seed, r.site_no, _PLANT, _P_NEAR))
        for r in rosters
    ]  # fmt: skip
    offset = np.zeros(max((r.site_no for r in rosters), default=0) + 1, dtype=np.int64)
    offset[[r.site_no for r in rosters]] = np.cumsum([0] + [len(r.first_row) for r in rosters])[:-1]
    merged = {k: np.concatenate([pool[k] for pool in pools]) if pools else np.array([]) for k in
              ("name", "first17", "group", "low_income", "out_of_age", "male", "near_retirement")}  # fmt: skip
    first17 = merged["first17"]
    rng = _rng(options.seed, 0, _GLOBAL, 1)
    while True:  # ID numbers are unique per person: redraw the sequence code of a clash
        dup = pd.Series(first17).duplicated().to_numpy()
        if not dup.any():
            break
        seq = rng.integers(1, 500, int(dup.sum())) * 2 - merged["male"][dup]
        first17[dup] = np.strings.add(np.strings.slice(first17[dup], 0, 14), _zfill(seq, 3))
    check = np.array([check_character(s) for s in first17.tolist()])
    for r in rosters:
        r.row_person = offset[r.row_home] + r.row_serial
    return _People(name=merged["name"], first17=first17, check=check, group=merged["group"].astype(np.int64),
                   low_income=merged["low_income"].astype(bool), out_of_age=merged["out_of_age"].astype(bool),
                   near_retirement=merged["near_retirement"].astype(bool))  # fmt: skip


def _plant_invalid_ids(rosters: list[_Roster], people: _People, options: SampleOptions) -> None:
    for r in rosters:
        rng = _rng(options.seed, r.site_no, _ROW_MESS)
        n = len(r.row_class)
        # Rows of planted patterns keep their ID valid, so the pattern stays visible.
        bad = (
            (rng.random(n) < options.invalid_id_rate)
            & ~r.row_cross
            & (r.row_plant == 0)
            & ~people.near_retirement[r.row_person]
        )
        correct = np.searchsorted(_CHECK_ALPHABET, people.check[r.row_person])
        wrong = _CHECK_ALPHABET[(correct + rng.integers(1, len(_CHECK_ALPHABET), n)) % len(_CHECK_ALPHABET)]
        r.row_bad_check = np.where(bad, wrong, "")


# ------------------------------------------------------------------------------ finance


def _allocation_yuan(plan: Plan, site: Site) -> dict[str, int]:
    """The site's share of its batch year's plan cell, by fund source."""
    if site.batch_year not in plan.policy.plan_years:
        return {"provincial": 0, "district": 0}
    cell = plan.policy.plan_cell(site.batch_year, site.programme)
    return {"provincial": cell.provincial * WAN // cell.sites, "district": cell.district * WAN // cell.sites}


def _company(rng: np.random.Generator, business: str) -> str:
    prefix = ("杭州", "浙江", "杭州余杭")[int(rng.integers(3))]
    return f"{prefix}{_BRANDS[int(rng.integers(len(_BRANDS)))]}{business}有限公司"


def _split_fen(total_fen: int, n: int, rng: np.random.Generator, round_to: int) -> list[int]:
    shares = rng.dirichlet(np.full(n, 2.0))
    return [max(round_to, int(round(total_fen * s / round_to)) * round_to) for s in shares]


def _build_ledger(
    site: Site, plan: Plan, months: list[int], options: SampleOptions, occ_names: np.ndarray, rng: np.random.Generator,
    *, person_times: dict[int, int], skip: set[int], plant_rng: np.random.Generator,
) -> pd.DataFrame:  # fmt: skip
    """All payments of a site over the window (one row each, vouchers numbered by month).

    ``person_times`` are the site's roster rows per year in the window: training money stays
    below the integrity limit per person-time (``_cap_training``) unless the site is the
    training-overpaid one. ``plant_rng`` draws what the patterns and that cap change, so the
    other draws stay as they are.
    """
    programme = site.programme
    active = _active_month(site)
    end = plan.policy.implementation_end
    horizon_end = max((end.year - 1970) * 12 + end.month - 1, (site.batch_year - 1970) * 12 + 11)
    horizon = list(range(active, horizon_end + 1))
    alloc = _allocation_yuan(plan, site)
    # What equipment the site buys: a base for its focus industry, a station for one key industry.
    if programme == "base":
        equipment_for = site.industry_focus
    elif programme == "station":
        equipment_for = str(rng.choice([k for k in _EQUIPMENT_ITEMS if k != "other"]))
    else:
        equipment_for = "other"
    items = _EQUIPMENT_ITEMS[equipment_for]
    suppliers = [_company(rng, b) for b in rng.choice(_SUPPLIER_BUSINESS[equipment_for], 3)]
    schools = [f"杭州市余杭区{b}职业技能培训学校" for b in rng.choice(_BRANDS, 2, replace=False)]
    partners = [p for p in re.split(r"[;；、,]", site.partners) if "学院" in p or "学校" in p] or list(_COLLEGES[:1])
    payments: list[dict[str, Any]] = []

    def pay(
        month: int, source: str, category: str, fen: int, payee: str, description: str, ineligible: bool = False
    ) -> None:
        payments.append({"month": month, "fund_source": source, "category": category, "fen": fen, "payee": payee,
                         "description": description, "ineligible": ineligible})  # fmt: skip

    def describe(category: str, month: int, g: np.random.Generator = rng) -> tuple[str, str]:
        rng = g
        y, m = _year(month), _month_no(month)
        if category == "equipment":
            return suppliers[int(rng.integers(len(suppliers)))], f"采购{rng.choice(items)}"
        if category == "teacher_training":
            return str(rng.choice(partners + list(_COLLEGES))), f"{y}年{m}月师资培训费"
        if category == "project_training":
            return schools[int(rng.integers(len(schools)))], f"{rng.choice(occ_names)}项目制培训费"
        if category == "training_subsidy":
            payee = _PERSONS_PAYEE if rng.random() < 0.4 else schools[int(rng.integers(len(schools)))]
            return payee, f"{y}年{m}月职业技能培训补贴"
        if category == "standard_development":
            return str(rng.choice(partners)), f"{rng.choice(occ_names)}技能等级评价标准开发"
        if category == "high_skill_subsidy":
            return _PERSONS_PAYEE, f"{y}年高技能人才培养补助"
        return _company(rng, "物业管理"), str(rng.choice(["培训场地租赁费", "水电物业费", "培训资料印制费"]))

    def schedule(total_fen: int, n: int, source: str, category: str) -> None:
        window = horizon[: max(1, int(len(horizon) * 0.6))] if category == "equipment" else horizon
        round_to = 1000 if category == "equipment" and rng.random() < 0.5 else 1
        for fen, month in zip(_split_fen(total_fen, n, rng, round_to), rng.choice(window, n), strict=True):
            payee, text = describe(category, int(month))
            pay(int(month), source, category, fen, payee, text)

    if programme == "base":
        subsidised = 0
        for source in ("provincial", "district"):
            if alloc[source]:
                spent = int(alloc[source] * 100 * rng.uniform(*_SPENT_SHARE))
                schedule(spent, int(rng.integers(3, 9)), source, "equipment")
                subsidised += spent
        if site.site_code == options.base_over_claim:  # planted: equipment worth less than twice the subsidy
            equipment_total = int(subsidised * rng.uniform(*_OVER_CLAIM_MULTIPLE))
        else:
            equipment_total = int(
                (alloc["provincial"] + alloc["district"]) * 100 * rng.uniform(*_BASE_EQUIPMENT_MULTIPLE)
            )
        if equipment_total > subsidised:
            schedule(equipment_total - subsidised, int(rng.integers(4, 11)), "self", "equipment")
    elif alloc["provincial"]:
        spent_fen = alloc["provincial"] * 100 * rng.uniform(*_SPENT_SHARE)
        for category, (share, fewest, most) in _PROVINCIAL_SPLIT[programme].items():
            schedule(int(spent_fen * share), int(rng.integers(fewest, most + 1)), "provincial", category)
    probability, most, sources, categories, (lo, hi) = _ROUTINE[programme]
    for month in sorted(set(horizon) | set(months)):
        for _ in range(int(rng.integers(1, most + 1)) if rng.random() < probability else 0):
            category = str(rng.choice(categories))
            payee, text = describe(category, month)
            pay(month, str(rng.choice(sources)), category, int(rng.integers(lo * 100, hi * 100)), payee, text)
        if alloc["provincial"] and month in horizon and rng.random() < options.ineligible_spending_rate:
            text, business = _INELIGIBLE_ITEMS[int(rng.integers(len(_INELIGIBLE_ITEMS)))]
            fen = int(alloc["provincial"] * 100 * rng.uniform(*_INELIGIBLE_SHARE))
            pay(month, "provincial", "other", fen, _company(rng, business), text, ineligible=True)
    columns = ["month", "fund_source", "category", "fen", "payee", "description", "ineligible"]
    ledger = pd.DataFrame(payments, columns=columns).sort_values("month", kind="stable").reset_index(drop=True)
    ledger = ledger[ledger["month"].isin(months)].reset_index(drop=True)
    limit = _integrity_parameter(plan, "training_paid_beyond_roster", "max_yuan_per_person_time")
    training = tuple(_integrity_parameter(plan, "training_paid_beyond_roster", "categories"))
    _cap_training(ledger, person_times, int(limit * 100 * _CLEAN_TRAINING_SHARE), training, skip,
                  lambda category, month: describe(category, month, plant_rng))  # fmt: skip
    ledger["pay_date"] = _random_weekdays(ledger["month"].to_numpy(np.int64), rng)
    ledger = ledger.sort_values(["month", "pay_date"], kind="stable").reset_index(drop=True)
    ledger["voucher_no"] = [
        f"记{_month_text(m).replace('-', '')}-{k:03d}"
        for m, k in zip(ledger["month"], ledger.groupby("month").cumcount() + 1, strict=True)
    ]
    digits = rng.integers(0, 10, (len(ledger), 16)).astype(str)
    ledger["invoice_no"] = [
        "" if payee == _PERSONS_PAYEE else f"{_year(m) % 100:02d}33{''.join(d)}"
        for payee, m, d in zip(ledger["payee"], ledger["month"], digits, strict=True)
    ]
    # Many payments are whole yuan; the others keep their jiao and fen.
    ledger["fen"] = np.where(rng.random(len(ledger)) < 0.4, ledger["fen"] // 100 * 100, ledger["fen"])
    ledger["plant"] = ""
    focus_year = plan.policy.implementation_years[-1]
    focus = [m for m in months if _year(m) == focus_year and m not in skip]
    if site.site_code == options.training_overpaid_site and focus and person_times.get(focus_year, 0):
        # Planted: one or two large training subsidies take the year's training money over the limit.
        paid = int(
            ledger.loc[(ledger["month"] // 12 + 1970 == focus_year) & ledger["category"].isin(training), "fen"].sum()
        )
        wanted = int(person_times[focus_year] * limit * 100 * plant_rng.uniform(*_OVERPAID_MULTIPLE))
        extra = []
        for fen in _split_fen(max(wanted - paid, 10_000), int(plant_rng.integers(1, 3)), plant_rng, 10_000):
            month = int(focus[int(plant_rng.integers(len(focus)))])
            payee, text = describe("training_subsidy", month, plant_rng)
            invoice = "" if payee == _PERSONS_PAYEE else _new_invoice(focus_year, plant_rng)
            extra.append({"month": month, "fund_source": "town", "category": "training_subsidy", "fen": fen,
                          "payee": payee, "description": text, "ineligible": False, "invoice_no": invoice,
                          "plant": "training_overpaid",
                          "pay_date": _random_weekdays(np.array([month]), plant_rng)[0]})  # fmt: skip
        ledger = _append_payments(ledger, pd.DataFrame(extra))
    return ledger


def _append_payments(ledger: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """``extra`` payments after the others of their month, numbered on from the month's last voucher
    (a payment that has its ``voucher_no`` already keeps it)."""
    if not len(extra):
        return ledger
    extra = extra.copy()
    if "voucher_no" not in extra:
        extra["voucher_no"] = ""
    for i in np.flatnonzero(extra["voucher_no"].to_numpy(dtype=str) == ""):
        month = int(extra["month"].iloc[i])
        taken = set(ledger.loc[ledger["month"] == month, "voucher_no"]) | set(
            extra.loc[extra["month"] == month, "voucher_no"]
        )
        seq = next(
            k for k in range(len(taken) + 1, 10_000) if f"记{_month_text(month).replace('-', '')}-{k:03d}" not in taken
        )
        extra.iloc[int(i), extra.columns.tolist().index("voucher_no")] = (
            f"记{_month_text(month).replace('-', '')}-{seq:03d}"
        )
    merged = pd.concat([ledger, extra[ledger.columns]], ignore_index=True)
    return merged.sort_values("month", kind="stable").reset_index(drop=True)


def _cap_training(
    ledger: pd.DataFrame, person_times: dict[int, int], limit_fen: int, training: tuple[str, ...], skip: set[int],
    describe: Any,
) -> None:  # fmt: skip
    """Keep each year's training money at most ``limit_fen`` per roster person-time of that year.

    Both as the files show them: ``person_times`` and the money leave out the months in ``skip``
    (never submitted), so a missing roster does not make the rest of the year's money look paid
    beyond it.

    Over it, the largest training payments are booked instead as teacher training (provincial
    money, still an eligible use) or other costs (town or own money), so what each source spends
    stays the same. Only small rosters meet this: villages, and every site at a small scale.
    """
    year = (ledger["month"].to_numpy(np.int64) // 12 + 1970) if len(ledger) else np.array([], dtype=np.int64)
    is_training = ledger["category"].isin(training).to_numpy(bool) & ~ledger["month"].isin(sorted(skip)).to_numpy(bool)
    fen = ledger["fen"].to_numpy(np.int64)
    for y in np.unique(year[is_training]):
        rows = np.flatnonzero(is_training & (year == y))
        total, cap = int(fen[rows].sum()), limit_fen * person_times.get(int(y), 0)
        for i in rows[np.argsort(-fen[rows], kind="stable")]:
            if total <= cap:
                break
            total -= int(fen[i])
            category = "teacher_training" if ledger.at[i, "fund_source"] == "provincial" else "other"
            payee, text = describe(category, int(ledger["month"][i]))
            ledger.loc[i, ["category", "payee", "description"]] = [category, payee, text]


# ------------------------------------------------------------------------------ fraud patterns: payments


def _new_invoice(year: int, rng: np.random.Generator) -> str:
    return f"{year % 100:02d}33{int(rng.integers(0, 10**8)):08d}{int(rng.integers(0, 10**8)):08d}"


def _plant_payments(
    ledgers: list[pd.DataFrame], codes: list[str], months: list[list[int]], skip: list[set[int]],
    options: SampleOptions, plan: Plan,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Duplicate vouchers and invoices across sites, payments after the period; clean-world fixes.

    Works on all sites' ledgers at once (they are small: their size does not grow with the
    scale) and changes them in place (``ledgers[i]`` is replaced). Returns the planted pairs.
    """
    out: dict[str, list[dict[str, Any]]] = {"duplicate_voucher": [], "duplicate_invoice": []}
    if not ledgers:
        return out
    training = tuple(_integrity_parameter(plan, "training_paid_beyond_roster", "categories"))
    frame = pd.concat([ledger.assign(_site=i, _order=np.arange(len(ledger))) for i, ledger in enumerate(ledgers)],
                      ignore_index=True)  # fmt: skip
    site = frame["_site"].to_numpy(np.int64)
    month = frame["month"].to_numpy(np.int64)
    written = np.array([m not in skip[i] for i, m in zip(site, month, strict=True)], dtype=bool)

    def plain() -> np.ndarray:
        """Payments no pattern has used yet (nor the ineligible ones), in files that are written."""
        return (frame["plant"].to_numpy(dtype=str) == "") & ~frame["ineligible"].to_numpy(bool) & written

    not_training = ~frame["category"].isin(training).to_numpy(bool)

    # The same payment booked by a second site in the same month: a copy under the same voucher
    # number (one the second site has not used that month), amount and payee. Not training money,
    # which would make the second site's training money per person-time a pattern of its own.
    rng = _rng(options.seed, 0, _PLANT, _P_VOUCHER)
    wanted = int(rng.binomial(len(frame), options.duplicate_voucher_rate)) if options.duplicate_voucher_rate > 0 else 0
    if wanted:
        used = {(int(i), int(m), str(v)) for i, m, v in zip(site, month, frame["voucher_no"], strict=True)}
        # Not into the over-claiming base: its equipment is its own pattern.
        open_months = [set() if codes[i] == options.base_over_claim else set(m) - s
                       for i, (m, s) in enumerate(zip(months, skip, strict=True))]  # fmt: skip
        copies: list[int] = []
        for row in np.flatnonzero(plain() & not_training)[rng.permutation(int((plain() & not_training).sum()))]:
            if len(copies) == wanted:
                break
            src = frame.iloc[row]
            m, v = int(src["month"]), str(src["voucher_no"])
            targets = [
                t for t in range(len(ledgers)) if t != src["_site"] and m in open_months[t] and (t, m, v) not in used
            ]
            if not targets:
                continue
            t = targets[int(rng.integers(len(targets)))]
            used.add((t, m, v))
            copy = src.copy()
            copy["_site"], copy["_order"], copy["plant"] = t, 10**9 + len(copies), "duplicate_voucher"
            # The copy has no invoice, or one of its own.
            copy["invoice_no"] = _new_invoice(_year(m), rng) if src["invoice_no"] and rng.random() < 0.5 else ""
            frame.iloc[int(row), frame.columns.tolist().index("plant")] = "duplicate_voucher"
            copies.append(copy)
            amount = int(src["fen"])
            out["duplicate_voucher"].append({"voucher_no": v, "amount_yuan": f"{amount // 100}.{amount % 100:02d}",
                                             "payee": str(src["payee"]), "sites": [codes[int(src["_site"])], codes[t]],
                                             "period": _month_text(m)})  # fmt: skip
        if copies:
            frame = pd.concat([frame, pd.DataFrame(copies).astype(frame.dtypes.to_dict())], ignore_index=True)
            site = frame["_site"].to_numpy(np.int64)
            month = frame["month"].to_numpy(np.int64)
            written = np.array([m not in skip[i] for i, m in zip(site, month, strict=True)], dtype=bool)

    # An invoice number used again on another site's payment (another amount, payee and voucher).
    rng = _rng(options.seed, 0, _PLANT, _P_INVOICE)
    invoice = frame["invoice_no"].to_numpy(dtype=object, copy=True)
    has_invoice = invoice != ""
    wanted = (
        int(rng.binomial(int(has_invoice.sum()), options.duplicate_invoice_rate))
        if options.duplicate_invoice_rate > 0
        else 0
    )
    if wanted:
        fen = frame["fen"].to_numpy(np.int64)
        payee = frame["payee"].to_numpy(dtype=str)
        voucher = frame["voucher_no"].to_numpy(dtype=str)
        year = month // 12 + 1970
        free = plain() & has_invoice
        for row in np.flatnonzero(free)[rng.permutation(int(free.sum()))]:
            if len(out["duplicate_invoice"]) == wanted:
                break
            if not free[row]:
                continue
            fits = free & (site != site[row]) & (fen != fen[row]) & (payee != payee[row]) & (voucher != voucher[row])
            if (fits & (year == year[row])).any():
                fits &= year == year[row]
            candidates = np.flatnonzero(fits)
            if not len(candidates):
                continue
            other = int(candidates[int(rng.integers(len(candidates)))])
            invoice[other] = invoice[row]
            free[[row, other]] = False
            frame.iloc[[int(row), int(other)], frame.columns.tolist().index("plant")] = "duplicate_invoice"
            out["duplicate_invoice"].append({"invoice_no": str(invoice[row]),
                                             "sites": [codes[int(site[row])], codes[int(site[other])]]})  # fmt: skip
        frame["invoice_no"] = invoice

    # Payments in the files of the month the implementation period ends, dated after it ends.
    if options.out_of_period_payment_rate > 0:
        rng = _rng(options.seed, 0, _PLANT, _P_PERIOD)
        end = plan.policy.implementation_end
        end_month = (end.year - 1970) * 12 + end.month - 1
        late = plain() & (month == end_month) & (rng.random(len(frame)) < options.out_of_period_payment_rate)
        days = rng.integers(_OUT_OF_PERIOD_DAYS[0], _OUT_OF_PERIOD_DAYS[1] + 1, len(frame))
        pay_date = frame["pay_date"].to_numpy("datetime64[D]", copy=True)
        pay_date[late] = np.datetime64(end, "D") + days[late]
        frame["pay_date"] = pay_date
        frame.loc[late, "plant"] = "out_of_period"

    # The clean world: invoice numbers unique, and no (voucher, amount, payee) at two sites.
    rng = _rng(options.seed, 0, _PLANT, _P_FIX)
    planted = frame["plant"].to_numpy(dtype=str)
    while True:
        invoice = frame["invoice_no"].to_numpy(dtype=object, copy=True)
        clash = (invoice != "") & pd.Series(invoice).duplicated().to_numpy() & (planted != "duplicate_invoice")
        if not clash.any():
            break
        invoice[clash] = [_new_invoice(_year(int(m)), rng) for m in frame.loc[clash, "month"]]
        frame["invoice_no"] = invoice
    copied = planted == "duplicate_voucher"
    while True:
        key = frame["voucher_no"].astype(str) + "|" + frame["fen"].astype(str) + "|" + frame["payee"].astype(str)
        order = np.lexsort((np.arange(len(frame)), ~copied))  # a planted pair owns its key
        first_site = (
            pd.Series(frame["_site"].to_numpy(np.int64)[order]).groupby(key.to_numpy()[order]).transform("first")
        )
        first = np.empty(len(frame), dtype=np.int64)
        first[order] = first_site.to_numpy(np.int64)
        clash = (frame["_site"].to_numpy(np.int64) != first) & ~copied
        if not clash.any():
            break
        fen = frame["fen"].to_numpy(np.int64)
        frame["fen"] = np.where(clash, fen + np.where(fen % 100 == 0, 100, 1), fen)

    frame = frame.sort_values(["_site", "month", "_order"], kind="stable")
    for i in range(len(ledgers)):
        ledgers[i] = frame[frame["_site"] == i].drop(columns=["_site", "_order"]).reset_index(drop=True)
    return out


# ------------------------------------------------------------------------------ surveys and outcomes


def _survey_rows(quarter_end: int, first_month: int, rng: np.random.Generator) -> pd.DataFrame:
    """Responses collected over the quarter, from the site's first active month on."""
    n = int(rng.integers(_SURVEY_RESPONSES[0], _SURVEY_RESPONSES[1] + 1))
    satisfied = rng.random(n) < rng.uniform(*_SURVEY_SATISFIED)
    top = np.where(rng.random(n) < 0.6, 0, 1)
    low = rng.choice([2, 3, 4], size=n, p=[0.7, 0.22, 0.08])
    months = np.maximum(quarter_end - rng.integers(0, 3, n), first_month)
    days = np.sort(_random_weekdays(months, rng))
    worker = rng.random(n) < rng.uniform(*_SURVEY_WORKER_SHARE)
    return pd.DataFrame({"respondent_type": np.where(worker, "worker", "enterprise"),
                         "survey_date": days, "rating": np.where(satisfied, top, low)})  # fmt: skip


# ------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class _Style:
    """How one submission is written."""

    fmt: str  # "csv" | "xlsx"
    encoding: str  # csv: "utf-8", "utf-8-sig", "gb18030"; xlsx: ""
    header: str  # "zh" | "en"
    date_style: str  # "iso" | "slash" | "zh"
    blank_row: bool  # xlsx: a blank row between the title row and the header


class _Vocabulary:
    """Headers and enum spellings from the contract: English canonical or first Chinese."""

    def __init__(self, contract: Contract):
        self.contract = contract

    def header(self, kind: str, lang: str) -> list[str]:
        columns = self.contract.kind(kind).columns
        return [name if lang == "en" else str(spec.aliases[0]) for name, spec in columns.items()]

    def table(self, enum: str, codes: Sequence[str], lang: str) -> np.ndarray:
        spellings = self.contract.enums[enum]
        return np.array([code if lang == "en" else str(spellings[code][0]) for code in codes])

    def bools(self, values: np.ndarray, lang: str) -> np.ndarray:
        return self.table("bool", ["false", "true"], lang)[values.astype(np.int64)]

    def kind_zh(self, kind: str) -> str:
        return self.contract.kind(kind).name_zh


def _noise(values: np.ndarray, rate: float, rng: np.random.Generator, full_width: bool) -> tuple[np.ndarray, int]:
    """Trailing spaces (or full-width digits) in a share ``rate`` of the values."""
    hit = rng.random(len(values)) < rate
    if not hit.any():
        return values, 0
    out = values.astype(object)
    out[hit] = [v.translate(_FULL_WIDTH) if full_width else v + " " for v in values[hit].tolist()]
    return out, int(hit.sum())


def _roster_frame(
    r: _Roster, rows: np.ndarray, people: _People, vocab: _Vocabulary, style: _Style, noise: float,
    rng: np.random.Generator, counters: Counter[str],
) -> pd.DataFrame:  # fmt: skip
    lang = style.header
    c = r.row_class[rows]
    g = r.row_person[rows]
    bad = r.row_bad_check[rows]
    year2 = ((1970 + r.cls_month[c] // 12) % 100).astype(str)
    cert_prefix = np.strings.add(
        np.strings.add(np.where(r.cls_level[c] == LEVELS.index("special_skill"), "Z", "S"), f"330110{r.site_no:03d}"),
        year2,
    )
    cert = np.where(r.row_cert[rows] >= 0, np.strings.add(np.strings.add(cert_prefix, _LEVEL_DIGIT[r.cls_level[c]]),
                    _zfill(r.row_cert[rows], 6)), "")  # fmt: skip
    rating = r.row_rating[rows]
    results = vocab.table("pass_result", ["failed", "passed"], lang)
    names, spaced = _noise(people.name[g], noise, rng, full_width=False)
    hours, widened = _noise(r.cls_hours[c].astype(str), noise, rng, full_width=True)
    counters["trailing_space_cells"] += spaced
    counters["full_width_cells"] += widened
    return pd.DataFrame(dtype=object, data={
        "site_code": np.full(len(rows), r.site.site_code),
        "class_id": r.cls_id[c],
        "course": r.cls_course[c],
        "occupation": _OCC_NAME[r.cls_occ[c]],
        "level": vocab.table("level", LEVELS, lang)[r.cls_level[c]],
        "industry": vocab.table("industry", _OCC_INDUSTRY.tolist(), lang)[r.cls_occ[c]],
        "start_date": _format_dates(r.cls_start[c], style.date_style),
        "end_date": _format_dates(r.cls_end[c], style.date_style),
        "hours": hours,
        "name": names,
        "id_number": np.strings.add(people.first17[g], np.where(bad != "", bad, people.check[g])),
        "group": vocab.table("group", GROUPS, lang)[people.group[g]],
        "low_income_household": vocab.bools(people.low_income[g], lang),
        "assessed": vocab.bools(r.row_assessed[rows], lang),
        "passed": np.where(r.row_assessed[rows], results[r.row_passed[rows].astype(np.int64)], ""),
        "certificate_no": cert,
        "satisfaction": np.where(rating >= 0, vocab.table("rating", RATINGS, lang)[np.maximum(rating, 0)], ""),
    })  # fmt: skip


def _finance_frame(
    site: Site, ledger: pd.DataFrame, vocab: _Vocabulary, style: _Style, noise: float,
    rng: np.random.Generator, counters: Counter[str],
) -> pd.DataFrame:  # fmt: skip
    lang = style.header
    fen = ledger["fen"].to_numpy(np.int64)
    amount = np.array([f"{f // 100}.{f % 100:02d}" for f in fen], dtype=str)
    amount, widened = _noise(amount, noise, rng, full_width=True)
    payee, spaced = _noise(ledger["payee"].to_numpy(dtype=str), noise, rng, full_width=False)
    counters["trailing_space_cells"] += spaced
    counters["full_width_cells"] += widened
    sources, categories = list(vocab.contract.enums["fund_source"]), list(vocab.contract.enums["category"])
    return pd.DataFrame(dtype=object, data={
        "site_code": np.full(len(ledger), site.site_code),
        "voucher_no": ledger["voucher_no"].to_numpy(dtype=str),
        "pay_date": _format_dates(ledger["pay_date"].to_numpy("datetime64[D]"), style.date_style),
        "amount": amount,
        "fund_source": vocab.table("fund_source", sources, lang)[[sources.index(s) for s in ledger["fund_source"]]],
        "category": vocab.table("category", categories, lang)[[categories.index(c) for c in ledger["category"]]],
        "payee": payee,
        "invoice_no": ledger["invoice_no"].to_numpy(dtype=str),
        "description": ledger["description"].to_numpy(dtype=str),
    })  # fmt: skip


def _survey_frame(site: Site, survey: pd.DataFrame, vocab: _Vocabulary, style: _Style) -> pd.DataFrame:
    lang = style.header
    return pd.DataFrame(dtype=object, data={
        "site_code": np.full(len(survey), site.site_code),
        "respondent_type": vocab.table("respondent_type", ["enterprise", "worker"], lang)[
            (survey["respondent_type"] == "worker").to_numpy(np.int64)],
        "survey_date": _format_dates(survey["survey_date"].to_numpy("datetime64[D]"), style.date_style),
        "rating": vocab.table("rating", RATINGS, lang)[survey["rating"].to_numpy(np.int64)],
    })  # fmt: skip


def _outcomes_frame(site: Site, year: int, trainees: int, rng: np.random.Generator) -> pd.DataFrame:
    households = int(rng.integers(5, 41))
    coverage = rng.uniform(0.8, 1.0) if rng.random() < 0.9 else rng.uniform(0.55, 0.8)
    gain = int(rng.integers(80, 601)) * 10
    with_skill = min(households, int(round(households * coverage)))
    row = {"site_code": site.site_code, "year": year, "low_income_households": households,
           "households_with_skill": with_skill, "trainees": trainees, "avg_income_gain": gain}  # fmt: skip
    return pd.DataFrame(dtype=object, data={k: [str(v)] for k, v in row.items()})


def _write_csv(path: Path, frame: pd.DataFrame, header: list[str], encoding: str) -> None:
    # Excel-saved files (BOM, GBK) end lines with CRLF; plain UTF-8 exports with LF.
    frame.to_csv(
        path, index=False, header=header, encoding=encoding, lineterminator="\n" if encoding == "utf-8" else "\r\n"
    )


def _write_xlsx(
    path: Path, frame: pd.DataFrame, header: list[str], title: str, sheet_name: str, style: _Style,
    created: dt.datetime, column_types: dict[str, str],
) -> None:  # fmt: skip
    """One sheet: merged title row, optional blank row, header, data; numbers and ISO dates typed."""
    # in_memory gives every zip member the fixed 1980-01-01 timestamp; ``created`` is fixed too.
    workbook = xlsxwriter.Workbook(str(path), {"in_memory": True, "default_date_format": "yyyy-mm-dd"})
    workbook.set_properties({"title": title, "created": created.replace(tzinfo=None)})
    sheet = workbook.add_worksheet(sheet_name)
    bold = workbook.add_format({"bold": True, "align": "center"})
    sheet.merge_range(0, 0, 0, len(header) - 1, title, bold)
    first = 3 if style.blank_row else 2
    sheet.write_row(first - 1, 0, header)
    kinds = [column_types[c] for c in frame.columns]
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        sheet.write_row(first + i, 0, [_cell(v, t, style.date_style) for v, t in zip(values, kinds, strict=True)])
    workbook.close()


def _cell(value: str, column_type: str, date_style: str) -> Any:
    """What Excel would hold: blank, a number, a date or text."""
    if value == "":
        return None
    if column_type in ("number", "integer", "money") and re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    if column_type == "date" and date_style == "iso":
        return dt.date.fromisoformat(value)
    return value


def _site_occupations(site: Site) -> np.ndarray:
    """Occupations a site's finance descriptions may name (independent of the roster's scale)."""
    if site.programme == "village":
        return _OCC_NAME[[o.village_weight > 0 for o in OCCUPATIONS]]
    if site.programme == "station":
        return _OCC_NAME[[o.station_weight > 0 for o in OCCUPATIONS]]
    return _OCC_NAME[[o.station_weight > 0 and o.industry == site.industry_focus for o in OCCUPATIONS]]


class _Writer:
    """Decides how each submission arrives (or does not), writes it and keeps the truth."""

    def __init__(self, inbox: Path, plan: Plan, options: SampleOptions):
        self.inbox = inbox
        self.plan = plan
        self.options = options
        self.vocab = _Vocabulary(plan.contract)
        self.tz = ZoneInfo(plan.policy.timezone)
        self.kinds = list(plan.contract.kinds)
        self.column_types: dict[str, dict[str, str]] = {
            kind: {c: spec.type for c, spec in plan.contract.kind(kind).columns.items()} for kind in self.kinds
        }
        self.files: list[dict[str, Any]] = []
        self.missing: list[dict[str, str]] = []
        self.noise: Counter[str] = Counter()
        self.by_site: dict[str, Counter[str]] = defaultdict(Counter)
        self.site_years: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self.written_rosters: set[tuple[str, str]] = set()
        self.lists: dict[str, list[Any]] = defaultdict(list)  # planted rows and classes, as written
        self.passed_ends: dict[str, list[np.ndarray]] = defaultdict(list)  # end dates of passed rows (no burst)
        self.training = tuple(_integrity_parameter(plan, "training_paid_beyond_roster", "categories"))

    # --- calendar ----------------------------------------------------------------------
    def is_due(self, kind: str, site: Site, month: int) -> bool:
        sub = self.plan.policy.submission_rule(kind)
        if site.programme not in sub.programmes:
            return False
        return {"monthly": True, "quarterly": _month_no(month) % 3 == 0, "yearly": _month_no(month) == 12}[sub.cadence]

    def due_date(self, kind: str, month: int) -> dt.date:
        sub = self.plan.policy.submission_rule(kind)
        if sub.due_month is not None:  # a yearly kind
            return dt.date(_year(month) + 1, sub.due_month, sub.due_day)
        return dt.date(_year(month + 1), _month_no(month + 1), sub.due_day)

    def at(self, day: dt.date, rng: np.random.Generator) -> dt.datetime:
        minute = int(rng.integers(9 * 60, 18 * 60))
        return dt.datetime(
            day.year, day.month, day.day, minute // 60, minute % 60, int(rng.integers(60)), tzinfo=self.tz
        )

    def title(self, site: Site, month: int, kind: str) -> str:
        cadence = self.plan.policy.submission_rule(kind).cadence
        y, m = _year(month), _month_no(month)
        when = {"monthly": f"{y}年{m}月", "quarterly": f"{y}年第{(m - 1) // 3 + 1}季度", "yearly": f"{y}年度"}[cadence]
        return f"{site.name_zh}{when}{self.vocab.kind_zh(kind)}"

    def style(self, rng: np.random.Generator) -> _Style:
        o = self.options
        u = rng.random(6)
        xlsx = o.scale < _SCALE_XLSX_LIMIT and u[0] < o.xlsx_rate
        encoding = (
            ""
            if xlsx
            else "gb18030"
            if u[1] < o.gbk_rate
            else "utf-8-sig"
            if u[1] < o.gbk_rate + o.bom_rate
            else "utf-8"
        )
        date_style = ("slash" if u[4] < 0.5 else "zh") if u[3] < o.date_style_rate else "iso"
        return _Style(fmt="xlsx" if xlsx else "csv", encoding=encoding,
                      header="en" if u[2] < o.english_header_rate else "zh", date_style=date_style,
                      blank_row=bool(xlsx and u[5] < 0.4))  # fmt: skip

    # --- one site ------------------------------------------------------------------------
    def write_site(self, r: _Roster, ledger: pd.DataFrame, months: list[int], people: _People, skip: set[int]) -> None:
        o, site = self.options, r.site
        survey_rng = _rng(o.seed, r.site_no, _SURVEY)
        outcome_rng = _rng(o.seed, r.site_no, _OUTCOMES)
        row_month = r.row_month
        # pandas-stubs types a group key as any scalar; here it is a month number.
        ledger_by_month = {int(m): part for m, part in ledger.groupby("month", sort=True)}  # type: ignore[arg-type]
        for month in months:
            missing = month in skip  # drawn beforehand (_missing_months), so no pattern is planted there
            for kind_no, kind in enumerate(self.kinds):
                if not self.is_due(kind, site, month):
                    continue
                if missing and self.plan.policy.submission_rule(kind).cadence == "monthly":
                    self.missing.append({"site_code": site.site_code, "period": _month_text(month), "kind": kind})
                    self.by_site["missing_month"][site.site_code] += 1
                    continue
                rng = _rng(o.seed, r.site_no, _FILE, month, kind_no)
                style = self.style(rng)
                if kind == "roster":
                    rows = np.flatnonzero(row_month == month)
                    frame = _roster_frame(r, rows, people, self.vocab, style, o.noise_rate, rng, self.noise)
                    self.count_roster(r, rows, people, month)
                elif kind == "finance":
                    entries = ledger_by_month.get(month, ledger.iloc[:0])
                    frame = _finance_frame(site, entries, self.vocab, style, o.noise_rate, rng, self.noise)
                    self.count_finance(site, entries, month)
                elif kind == "survey":
                    survey = _survey_rows(month, _active_month(site), survey_rng)
                    frame = _survey_frame(site, survey, self.vocab, style)
                    self.count_survey(site, survey, month)
                else:
                    frame = _outcomes_frame(
                        site, _year(month), int((row_month // 12 == month // 12).sum()), outcome_rng
                    )
                self.submit(site, month, kind, style, frame, rng)

    def submit(
        self, site: Site, month: int, kind: str, style: _Style, frame: pd.DataFrame, rng: np.random.Generator
    ) -> None:
        o = self.options
        late = rng.random() < o.late_rate
        monthly = self.plan.policy.submission_rule(kind).cadence == "monthly"
        resubmit = monthly and rng.random() < o.resubmission_rate and len(frame) >= 2
        due = self.due_date(kind, month)
        shift = int(rng.integers(1, 21)) if late else -int(rng.integers(1, 7))
        submitted = self.at(due + dt.timedelta(days=shift), rng)
        versions = [(frame, submitted)]
        if resubmit:
            dropped = max(1, int(round(len(frame) * rng.uniform(0.05, 0.3))))
            keep = np.sort(rng.choice(len(frame), size=len(frame) - dropped, replace=False))
            later = self.at((submitted + dt.timedelta(days=int(rng.integers(2, 13)))).date(), rng)
            versions = [(frame.iloc[keep], submitted), (frame, later)]
            self.by_site["resubmission"][site.site_code] += 1
        if late:
            self.by_site["late"][site.site_code] += 1
        folder = self.inbox / _month_text(month) / site.site_code
        folder.mkdir(parents=True, exist_ok=True)
        header = self.vocab.header(kind, style.header)
        for version, (content, when) in enumerate(versions, start=1):
            path = folder / f"{kind}{'_v2' if version == 2 else ''}.{style.fmt}"
            if style.fmt == "csv":
                _write_csv(path, content, header, style.encoding)
            else:
                _write_xlsx(path, content, header, self.title(site, month, kind), self.vocab.kind_zh(kind), style, when,
                            self.column_types[kind])  # fmt: skip
            os.utime(path, (when.timestamp(), when.timestamp()))
            self.files.append({
                "path": path.relative_to(self.inbox).as_posix(), "site_code": site.site_code,
                "period": _month_text(month), "kind": kind, "version": version, "format": style.fmt,
                "encoding": style.encoding or None,
                "header": style.header, "date_style": style.date_style, "title_row": style.fmt == "xlsx",
                "blank_row": style.blank_row, "rows": len(content), "submitted_at": when.isoformat(),
                "due": due.isoformat(), "late": when.date() > due,
            })  # fmt: skip
        if kind == "roster":
            self.written_rosters.add((site.site_code, _month_text(month)))

    # --- truth -----------------------------------------------------------------------------
    def count_roster(self, r: _Roster, rows: np.ndarray, people: _People, month: int) -> None:
        code, stats = r.site.site_code, self.site_years[(r.site.site_code, _year(month))]
        stats["person_times"] += len(rows)
        stats["assessed"] += int(r.row_assessed[rows].sum())
        stats["passed"] += int(r.row_passed[rows].sum())
        self.by_site["invalid_id"][code] += int((r.row_bad_check[rows] != "").sum())
        self.by_site["out_of_age"][code] += int(people.out_of_age[r.row_person[rows]].sum())
        self.by_site["cross_site_duplicate"][code] += int(r.row_cross[rows].sum())
        near = rows[people.near_retirement[r.row_person[rows]]]
        self.by_site["near_retirement"][code] += len(near)
        self.lists["near_retirement"] += [[code, str(c)] for c in r.cls_id[r.row_class[near]]]
        classes = np.unique(r.row_class[rows])
        uniform = classes[r.cls_plant[classes] == _CLS_UNIFORM]
        self.by_site["uniform_class"][code] += len(uniform)
        self.lists["uniform_class"] += [[code, str(c)] for c in r.cls_id[uniform]]
        passed = rows[r.row_passed[rows] & (r.row_plant[rows] != _ROW_BURST)]
        self.passed_ends[code].append(r.cls_end[r.row_class[passed]])

    def count_finance(self, site: Site, entries: pd.DataFrame, month: int) -> None:
        stats = self.site_years[(site.site_code, _year(month))]
        fen = entries["fen"].to_numpy(np.int64)
        source = entries["fund_source"].to_numpy(dtype=str)
        for name in np.unique(source):
            stats[f"{name}_fen"] += int(fen[source == name].sum())
        category = entries["category"].to_numpy(dtype=str)
        stats["equipment_fen"] += int(fen[category == "equipment"].sum())
        stats["training_fen"] += int(fen[np.isin(category, self.training)].sum())
        bad = entries["ineligible"].to_numpy(dtype=bool)
        self.by_site["ineligible_spending"][site.site_code] += int(bad.sum())
        self.by_site["ineligible_spending_fen"][site.site_code] += int(fen[bad].sum())
        late = np.flatnonzero(entries["plant"].to_numpy(dtype=str) == "out_of_period")
        if len(late):
            self.by_site["out_of_period_payment"][site.site_code] += len(late)
            self.lists["out_of_period_payment"] += [
                {"site_code": site.site_code, "voucher_no": v, "pay_date": str(d)} for v, d in
                zip(entries["voucher_no"].to_numpy(dtype=str)[late],
                    entries["pay_date"].to_numpy("datetime64[D]")[late], strict=True)
            ]  # fmt: skip

    def count_survey(self, site: Site, survey: pd.DataFrame, month: int) -> None:
        stats = self.site_years[(site.site_code, _year(month))]
        satisfied = [RATINGS.index(x) for x in self.plan.policy.satisfied_ratings]
        for kind, part in survey.groupby("respondent_type"):
            stats[f"{kind}_responses"] += len(part)
            stats[f"{kind}_satisfied"] += int(part["rating"].isin(satisfied).sum())

    def certificate_burst_margin(self) -> dict[str, Any]:
        """The clean world's busiest certificate windows, in the terms of the certificate-burst check.

        Per site-year: the most passed trainees within ``window_days`` days by class end date (a
        window belongs to the year of its first day; ``passed_in_window``: the largest), and that
        number over the site-year's usual for so many days, passes of the year x 12 / (365 x months
        active) (``multiple_of_usual``: the largest among windows of at least ``min_passed``).
        ``flagged`` counts the site-years the check would report (more than ``multiple_of_usual``
        times usual and at least ``min_passed``); the burst's own classes are left out.
        """
        window = int(_integrity_parameter(self.plan, "certificate_burst", "window_days"))
        multiple = float(_integrity_parameter(self.plan, "certificate_burst", "multiple_of_usual"))
        least = int(_integrity_parameter(self.plan, "certificate_burst", "min_passed"))
        best: dict[str, Any] = {"passed_in_window": 0, "multiple_of_usual": "0.00", "flagged": 0}
        top = 0.0
        for code, parts in sorted(self.passed_ends.items()):
            days = np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.array([], dtype=np.int64)
            in_window = np.searchsorted(days, days + window, side="left") - np.arange(len(days))  # from each pass on
            years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
            for year in np.unique(years):
                mine = years == year
                busiest = int(in_window[mine].max())
                usual = (
                    int(mine.sum())
                    * 12
                    / (365 * (self.plan.sites_by_code[code].months_active(int(year)) or 12))
                    * window
                )
                best["passed_in_window"] = max(best["passed_in_window"], busiest)
                if busiest >= least:
                    top = max(top, busiest / usual)
                best["flagged"] += int(busiest > multiple * usual and busiest >= least)
        best["multiple_of_usual"] = f"{top:.2f}"
        return best

    def truth(self, pairs: list[dict[str, Any]], focus_year: int, planted: dict[str, Any]) -> dict[str, Any]:
        o = self.options

        def per_site(name: str) -> dict[str, Any]:
            counts = self.by_site[name]
            return {"total": int(sum(counts.values())), "by_site": {k: int(v) for k, v in sorted(counts.items()) if v}}

        def money(fen: int) -> str:
            return f"{fen // 100}.{fen % 100:02d}"

        site_years = []
        for (code, year), stats in sorted(self.site_years.items()):
            entry: dict[str, Any] = {"site_code": code, "year": year}
            entry.update({(k.removesuffix("_fen") + "_yuan" if k.endswith("_fen") else k):
                          (money(v) if k.endswith("_fen") else v) for k, v in sorted(stats.items())})  # fmt: skip
            site_years.append(entry)
        lookup = {(e["site_code"], e["year"]): e for e in site_years}
        under = lookup.get((o.underperforming_station, focus_year)) if o.underperforming_station else None
        low = lookup.get((o.low_pass_base, focus_year)) if o.low_pass_base else None
        superseded = {(f["site_code"], f["period"], f["kind"]) for f in self.files if f["version"] == 2}
        effective = [
            f for f in self.files if f["version"] == 2 or (f["site_code"], f["period"], f["kind"]) not in superseded
        ]
        ineligible = per_site("ineligible_spending")
        ineligible["amount_yuan_by_site"] = {
            k: money(v) for k, v in sorted(self.by_site["ineligible_spending_fen"].items()) if v
        }
        written_pairs = [p for p in pairs if (p["site_a"], p["period"]) in self.written_rosters
                         and (p["site_b"], p["period"]) in self.written_rosters]  # fmt: skip

        def listed(items: list[Any], site_of: Any) -> dict[str, Any]:
            counts = Counter(site_of(item) for item in items)
            return {"total": len(items), "by_site": dict(sorted(counts.items())), "list": items}

        burst = planted["certificate_burst"]
        if burst is not None:
            burst = {k: burst[k] for k in ("site_code", "window_start", "window_end", "certificates", "classes")}
        base = None  # the over-claiming base, when its files show subsidy paid and equipment below twice that
        years = [v for (c, _), v in self.site_years.items() if c == o.base_over_claim]
        equipment_fen = sum(v["equipment_fen"] for v in years)
        paid_fen = sum(v["provincial_fen"] + v["district_fen"] for v in years)
        if o.base_over_claim and 0 < equipment_fen < 2 * paid_fen:
            plan_yuan = _allocation_yuan(self.plan, self.plan.sites_by_code[o.base_over_claim])
            base = {"site_code": o.base_over_claim, "equipment_yuan": money(equipment_fen),
                    "paid_yuan": money(paid_fen),
                    "plan_yuan": money(100 * (plan_yuan["provincial"] + plan_yuan["district"]))}  # fmt: skip
        overpaid_key = (o.training_overpaid_site, focus_year)
        overpaid = None
        if o.training_overpaid_site and overpaid_key in self.site_years:
            stats = self.site_years[overpaid_key]
            overpaid = {"site_code": o.training_overpaid_site, "year": focus_year,
                        "person_times": stats["person_times"], "training_yuan": money(stats["training_fen"]),
                        "per_person_time_yuan": money(stats["training_fen"] // max(1, stats["person_times"])),
                        }  # fmt: skip
        ratios = [  # yuan per person-time in fen; a year without roster rows counts all its money (as the check)
            stats["training_fen"] // max(1, stats["person_times"])
            for key, stats in self.site_years.items() if key != overpaid_key and stats["training_fen"]
        ]  # fmt: skip
        return {
            "generator": "yuhang_sample.generator",
            "options": asdict(o),
            "focus_year": focus_year,
            "files": {
                "total": len(self.files),
                "by_kind": dict(sorted(Counter(f["kind"] for f in self.files).items())),
                "by_format": dict(sorted(Counter(f["encoding"] or f["format"] for f in self.files).items())),
                "english_header": sum(f["header"] == "en" for f in self.files),
                "list": self.files,
            },
            "rows": {kind: sum(f["rows"] for f in effective if f["kind"] == kind) for kind in self.kinds},
            "patterns": {
                "invalid_id": per_site("invalid_id"),
                "out_of_age": per_site("out_of_age"),
                "cross_site_duplicate": {**per_site("cross_site_duplicate"), "pairs": written_pairs},
                "missing_month": {**per_site("missing_month"), "list": self.missing},
                "resubmission": per_site("resubmission"),
                "late": per_site("late"),
                "ineligible_spending": ineligible,
                "underperforming_station": None
                if under is None
                else {
                    "site_code": o.underperforming_station,
                    "year": focus_year,
                    "person_times": under.get("person_times", 0),
                },
                "low_pass_base": None
                if low is None
                else {
                    "site_code": o.low_pass_base,
                    "year": focus_year,
                    "assessed": low.get("assessed", 0),
                    "passed": low.get("passed", 0),
                },
                "format_noise": {
                    **{k: int(v) for k, v in sorted(self.noise.items())},
                    "non_iso_date_files": sum(f["date_style"] != "iso" for f in self.files),
                },
                "over_yearly_limit": listed(planted["over_yearly_limit"], lambda p: p["site_code"]),
                "repeat_occupation_level": listed(planted["repeat_occupation_level"], lambda p: p[-1][0]),
                "near_retirement": {**per_site("near_retirement"), "list": self.lists["near_retirement"]},
                "certificate_burst": burst,
                "certificate_burst_clean_max": self.certificate_burst_margin(),
                "uniform_class": {**per_site("uniform_class"), "list": self.lists["uniform_class"]},
                "duplicate_invoice": listed(planted["duplicate_invoice"], lambda p: p["sites"][-1]),
                "duplicate_voucher": listed(planted["duplicate_voucher"], lambda p: p["sites"][-1]),
                "out_of_period_payment": {
                    **per_site("out_of_period_payment"),
                    "list": self.lists["out_of_period_payment"],
                },
                "base_over_claim": base,
                "training_overpaid": overpaid,
                "training_money_per_person_time_max_yuan": money(max(ratios)) if ratios else None,
            },  # fmt: skip
            "site_years": site_years,
        }


# ------------------------------------------------------------------------------ entry points


def _files_to_clear(inbox: Path, plan: Plan, clear: bool) -> list[Path]:
    """Files an earlier sample left in ``inbox``; raise unless the folder may be (re)used.

    Without ``clear`` the folder must be new or empty. With it, every file must sit where a
    submission goes (``<YYYY-MM>/<site>/<kind>[_v2].<ext>``), so nothing else is ever deleted.
    """
    if not inbox.exists() or not any(inbox.iterdir()):
        return []
    if not clear:
        raise FileExistsError(f"{inbox} is not empty: sample data goes into a new or empty folder (or use clear)")
    extensions = tuple(f".{e}" for e in plan.contract.inbox.extensions)
    files: list[Path] = []
    foreign: list[Path] = []
    for path in sorted(inbox.rglob("*")):
        parts = path.relative_to(inbox).parts
        if path.is_dir() and len(parts) <= 2:
            continue
        ours = (
            path.is_file() and len(parts) == 3 and re.fullmatch(r"\d{4}-\d{2}", parts[0]) is not None
            and parts[1] in plan.sites_by_code and path.suffix in extensions
            and path.stem.removesuffix("_v2") in plan.contract.kinds
        )  # fmt: skip
        (files if ours else foreign).append(path)
    if foreign:
        raise FileExistsError(f"{inbox} holds more than sample submissions (e.g. {foreign[0]}); not clearing it")
    return files


def generate(inbox: Path, options: SampleOptions, plan: Plan | None = None, *, clear: bool = False) -> dict[str, Any]:
    """Write a sample inbox under ``inbox`` and return the truth summary.

    ``inbox`` must be new or empty; with ``clear`` the submissions of an earlier sample there
    are deleted first (and the call refuses if the folder holds anything else).
    """
    plan = plan or Plan.from_settings(load_settings())
    options.check(plan)
    inbox = Path(inbox)
    for path in _files_to_clear(inbox, plan, clear):
        path.unlink()
    for folder in sorted((p for p in inbox.glob("*/*") if p.is_dir()), reverse=True):
        folder.rmdir()
    for folder in sorted(p for p in inbox.glob("*") if p.is_dir()):
        folder.rmdir()
    window = range(_month_index(options.start), _month_index(options.end) + 1)
    focus_year = plan.policy.implementation_years[-1]
    active = [
        (no, site, [m for m in window if m >= _active_month(site)]) for no, site in enumerate(plan.sites, start=1)
    ]
    active = [(no, site, months) for no, site, months in active if months]
    skip = {no: _missing_months(no, months, options) for no, _, months in active}
    burst_rule = (int(_integrity_parameter(plan, "certificate_burst", "window_days")),
                  float(_integrity_parameter(plan, "certificate_burst", "multiple_of_usual")),
                  int(_integrity_parameter(plan, "certificate_burst", "min_passed")))  # fmt: skip
    rosters = [
        _build_roster(site, no, months, options, focus_year, _rng(options.seed, no, _ROSTER), burst_rule)
        for no, site, months in active
    ]
    pairs = _plant_cross_site(rosters, options.cross_site_duplicate_rate, _rng(options.seed, 0, _GLOBAL, 0))
    burst = None
    for (no, site, _), r in zip(active, rosters, strict=True):
        if site.site_code == options.certificate_burst_site:
            burst = _plant_certificate_burst(r, options, focus_year, burst_rule[0], skip[no],
                                             _rng(options.seed, no, _PLANT, _P_BURST))  # fmt: skip
    over, repeat = _plant_extra_classes(rosters, options, skip)
    min_size = int(_integrity_parameter(plan, "uniform_class", "min_class_size"))
    _plant_uniform_classes(
        rosters, options.uniform_class_rate, min_size, skip, _rng(options.seed, 0, _PLANT, _P_UNIFORM)
    )
    for r in rosters:
        _break_uniform_classes(r, min_size)
        r.row_cert = _certificate_serials(r.row_month, r.row_passed)
    people = _build_people(rosters, options, plan.policy.female_retirement_base)
    _plant_invalid_ids(rosters, people, options)
    ledgers = []
    for (no, site, months), r in zip(active, rosters, strict=True):
        size = np.bincount(r.row_class, minlength=len(r.cls_month)) * ~np.isin(r.cls_month, sorted(skip[no]))
        years = r.cls_month // 12 + 1970
        ledgers.append(_build_ledger(
            site, plan, months, options, _site_occupations(site), _rng(options.seed, no, _FINANCE),
            person_times={int(y): int(size[years == y].sum()) for y in np.unique(years)}, skip=skip[no],
            plant_rng=_rng(options.seed, no, _PLANT, _P_LEDGER),
        ))  # fmt: skip
    payments = _plant_payments(ledgers, [site.site_code for _, site, _ in active], [months for _, _, months in active],
                               [skip[no] for no, _, _ in active], options, plan)  # fmt: skip
    inbox.mkdir(parents=True, exist_ok=True)
    writer = _Writer(inbox, plan, options)
    for (no, _, months), roster, ledger in zip(active, rosters, ledgers, strict=True):
        writer.write_site(roster, ledger, months, people, skip[no])
    planted = {"over_yearly_limit": over, "repeat_occupation_level": repeat, "certificate_burst": burst, **payments}
    return writer.truth(pairs, focus_year, planted)


def _parser() -> argparse.ArgumentParser:
    d = SampleOptions()
    parser = argparse.ArgumentParser(
        prog="yuhang-sample",
        description="Write a seeded, deterministic sample inbox in the published data contract "
        "(rosters, finance ledgers, surveys, village outcomes) with realistic mess planted.",
        epilog="Rates are probabilities in [0, 1]. --clean turns every planted pattern off; options given "
        "explicitly still apply on top of it.",
    )
    parser.add_argument(
        "--inbox", type=Path, required=True, help="folder to write (created; must be new or empty unless --clear)"
    )
    parser.add_argument("--truth", type=Path, help="also write the truth summary (what was planted) as JSON here")
    parser.add_argument(
        "--clear",
        action="store_true",
        help="delete an earlier sample's submissions in --inbox first (refuses if it holds other files)",
    )
    parser.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    parser.add_argument("--start", help=f"first month, YYYY-MM (default {d.start})")
    parser.add_argument("--end", help=f"last month, YYYY-MM (default {d.end})")
    parser.add_argument("--scale", type=float, help=f"multiplies the number of person-times (default {d.scale:g}); "
                        f"from {_SCALE_XLSX_LIMIT:g} up every file is CSV")  # fmt: skip
    parser.add_argument("--clean", action="store_true",
                        help="no planted patterns: every rate 0 and no planted site (underperforming station, low-pass "
                        "base, certificate burst, over-claiming base, training-overpaid station)")  # fmt: skip
    helps = {
        "gbk_rate": "share of CSV files encoded GBK/GB18030",
        "bom_rate": "share of CSV files in UTF-8 with BOM",
        "xlsx_rate": "share of files written as XLSX (title row, sometimes a blank row above the header)",
        "english_header_rate": "share of files with English canonical headers and codes instead of Chinese",
        "invalid_id_rate": "share of roster rows whose ID number has a wrong check character",
        "out_of_age_rate": "share of roster rows with a trainee aged 14-15 or past retirement age",
        "missing_month_rate": "share of site-months whose roster and finance files are never submitted",
        "resubmission_rate": "share of roster/finance files resubmitted as <kind>_v2 (first version missing rows)",
        "late_rate": "share of submissions made after their due date",
        "cross_site_duplicate_rate": (
            "share of station/base rows whose trainee also sits an overlapping class at another site"
        ),
        "ineligible_spending_rate": (
            "share of site-months with a provincial payment for an ineligible item (category other)"
        ),
        "noise_rate": "share of names and payees with a trailing space, and of hours and amounts in full-width digits",
        "date_style_rate": "share of files writing dates as 2026/3/5 or 2026年3月5日",
        "over_yearly_limit_rate": "share of station/base persons attending 4 classes in one year "
                                  "(no shared day, distinct occupation and level)",
        "repeat_occupation_level_rate": "share of persons attending a second class of the same occupation and level",
        "near_retirement_rate": "share of roster rows with a trainee 1-20 days past the statutory retirement date",
        "uniform_class_rate": "share of classes of 10+ trainees in which everyone passed and gave the same answer",
        "duplicate_invoice_rate": "share of invoiced payments whose invoice number another site's payment reuses",
        "duplicate_voucher_rate": "share of payments booked again, whole, by another site in the same month",
        "out_of_period_payment_rate": "share of payments in the last implementation month's files dated 1-20 days "
                                      "after the period ends",
    }  # fmt: skip
    for name, text in helps.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, metavar="RATE",
                            help=f"{text} (default {getattr(d, name):g})")  # fmt: skip
    parser.add_argument("--underperforming-station", metavar="CODE",
                        help=f"station that trains only ~420-480 person-times in the last implementation year "
                        f"(default {d.underperforming_station}; 'none' for no such station)")  # fmt: skip
    parser.add_argument("--low-pass-base", metavar="CODE",
                        help=f"base with a ~85%% pass rate in the last implementation year "
                        f"(default {d.low_pass_base}; 'none' for no such base)")  # fmt: skip
    parser.add_argument("--certificate-burst-site", metavar="CODE",
                        help=f"station or base certifying 4-6 extra classes of 40-60 trainees within 3 days in "
                        f"one month of the last implementation year (default {d.certificate_burst_site}; "
                        "'none' for none)")  # fmt: skip
    parser.add_argument("--base-over-claim", metavar="CODE",
                        help=f"base whose equipment costs less than twice the subsidy it was paid "
                        f"(default {d.base_over_claim}; 'none' for none)")  # fmt: skip
    parser.add_argument("--training-overpaid-site", metavar="CODE",
                        help=f"station paying more training money than the limit per roster person-time in the last "
                        f"implementation year (default {d.training_overpaid_site}; 'none' for none)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``yuhang-sample``."""
    parser = _parser()
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(SampleOptions) if getattr(args, f.name) is not None}
    for name in _SITE_OPTIONS:
        if name in overrides and overrides[name].lower() in ("", "none"):
            overrides[name] = None
    options = replace(SampleOptions.clean() if args.clean else SampleOptions(), **overrides)
    plan = Plan.from_settings(load_settings())
    try:
        options.check(plan)
        _files_to_clear(args.inbox, plan, args.clear)
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    truth = generate(args.inbox, options, plan, clear=args.clear)
    if args.truth:
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        args.truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    rows = ", ".join(f"{kind} {n:,}" for kind, n in truth["rows"].items())
    window = f"{options.start} to {options.end}, seed {options.seed}"
    print(f"{truth['files']['total']:,} files in {args.inbox} ({window}); rows: {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
