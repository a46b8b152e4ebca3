"""Prepare: a kind's rows cleaned into the columns its suite checks and the columns staging
keeps, within the period bounds of the folder each row came from. Personal data is derived and
hashed here: ID numbers and names leave as keyed hashes with the birth date, sex and age."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from yuhang_skills.core.policy import DateTolerance
from yuhang_skills.intake import identity
from yuhang_skills.intake.parse import number_text, on_distinct, to_codes, to_dates, to_fen, to_numbers


@lru_cache(maxsize=1024)
def period_bounds(period: str, kind: str, cadence: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day the data of a submission may describe (kept per period: every file of a
    month asks, and pandas' periods are slow to make)."""
    month = pd.Period(period, freq="M")
    if cadence == "quarterly":
        first = (month - 2).start_time
    elif cadence == "yearly":
        first = pd.Period(f"{month.year}-01", freq="M").start_time
        month = pd.Period(f"{month.year}-12", freq="M")
    else:
        first = month.start_time
    return first.normalize(), month.end_time.normalize()


# Row preparation, one function per kind, over the rows of one or many files of that kind.
# Each row carries where it came from: ``_folder_site``, ``_period_first``, ``_period_last``.
def _site_matches(frame: pd.DataFrame) -> pd.Series:
    site = frame["site_code"].astype("string").str.upper()
    return (site.isna() | (site == frame["_folder_site"])).astype(bool)


def _within(dates: pd.Series, frame: pd.DataFrame, tolerance: DateTolerance) -> pd.Series:
    """Dates inside their folder's period, ``tolerance.before`` days before its first day and
    ``tolerance.after`` days after its last day included (policy intake.date_tolerance_days)."""
    before, after = pd.Timedelta(days=tolerance.before), pd.Timedelta(days=tolerance.after)
    return (
        dates.isna() | ((dates >= frame["_period_first"] - before) & (dates <= frame["_period_last"] + after))
    ).astype(bool)


def _distinct_number(values: pd.Series) -> pd.Series:
    """Each value's number among the distinct values (float, NaN where missing)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return pd.Series(np.where(codes < 0, np.nan, codes), index=values.index)


def _prepare_roster(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    ids = identity.parse_ids(frame["id_number"], reference_date=ctx["today"])
    # An Excel number cell cannot hold an ID number: its own reason replaces the checks it would fail.
    typed = (
        frame["_id_typed_number"].fillna(False).astype(bool)
        if "_id_typed_number" in frame
        else pd.Series(False, index=frame.index)
    )
    fmt = ids["format_ok"].astype(bool) | typed
    checksum = ids["checksum_ok"].astype(bool) | ~fmt | typed
    birth_ok = ids["birth_date_ok"].astype(bool) | ~(fmt & checksum) | typed
    province = ids["province_ok"].astype(bool) | ~(fmt & checksum) | typed
    id_valid = ids["valid"].astype(bool)
    start, _ = to_dates(frame["start_date"])
    end, _ = to_dates(frame["end_date"])
    hours, _ = to_numbers(frame["hours"])
    birth, sex = ids["birth_date"].where(id_valid), ids["sex"].where(id_valid)

    def working_age_on(day: pd.Series) -> pd.DataFrame:
        return identity.working_age_status(
            birth,
            sex,
            day,
            female_base=ctx["policy"].female_retirement_base,
            minimum_age_years=ctx["policy"].minimum_working_age,
        )

    age = working_age_on(start)
    in_age = age["in_working_age"].astype(bool)
    grace = pd.Timedelta(days=ctx["policy"].intake.working_age_grace_days)
    if grace:  # within the grace of a limit: staged, and reported by the outside_working_age check
        in_age |= working_age_on(start - grace)["in_working_age"].astype(bool)
        in_age |= working_age_on(start + grace)["in_working_age"].astype(bool)
    in_age = in_age | ~id_valid | start.isna()
    assessed = to_codes(frame["assessed"], enums["bool"])
    passed = to_codes(frame["passed"], enums["pass_result"])
    # People attend several classes and names repeat: hash each distinct value once.
    person_key = on_distinct(ids["id_number"], lambda v: identity.hmac_hex(v, ctx["pii_key"], kind="id"))
    name_key = on_distinct(frame["name"], lambda v: identity.hmac_hex(v, ctx["pii_key"], kind="name"))
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "class_id": frame["class_id"],
            "course": frame["course"],
            "occupation": frame["occupation"],
            "certificate_no": frame["certificate_no"],
            "start_date": start,
            "end_date": end,
            "start_in_period": _within(start, frame, ctx["tolerance"]),
            "end_in_period": _within(end, frame, ctx["tolerance"]),
            "hours": hours,
            # The suite only asks "present?" and "twice in one class?" of names and IDs: it gets each
            # value's number among the batch's distinct values, which are cheap to compare and hash.
            "name_number": _distinct_number(name_key),
            "id_is_text": ~typed,
            "id_format_ok": fmt,
            "id_checksum_ok": checksum,
            "id_birth_date_ok": birth_ok,
            "id_province_ok": province,
            "in_working_age": in_age,
            "person_number": _distinct_number(person_key),
            "level": to_codes(frame["level"], enums["level"]),
            "industry": to_codes(frame["industry"], enums["industry"]),
            "person_group": to_codes(frame["group"], enums["group"]),
            "assessed": assessed,
            "low_income_household": to_codes(frame["low_income_household"], enums["bool"]),
            "passed": passed,
            "passed_consistent": ~((assessed == "false") & passed.notna()) & ~((assessed == "true") & passed.isna()),
            "satisfaction": to_codes(frame["satisfaction"], enums["rating"]),
        }
    )
    staged = pd.DataFrame(
        {
            "class_id": checked["class_id"],
            "course": checked["course"],
            "occupation": checked["occupation"],
            "level": checked["level"],
            "industry": checked["industry"],
            "start_date": start.dt.date,
            "end_date": end.dt.date,
            "hours": hours.round(2),
            "person_key": person_key,
            "name_key": name_key,
            "birth_date": ids["birth_date"].dt.date,
            "sex": ids["sex"],
            "age_on_start": age["age_years"],
            "person_group": checked["person_group"],
            "low_income_household": checked["low_income_household"].map({"true": True, "false": False}),
            "assessed": assessed.map({"true": True, "false": False}),
            "passed": passed.map({"passed": True, "failed": False}),
            "certificate_no": frame["certificate_no"],
            "satisfaction": checked["satisfaction"],
        }
    )
    return checked, staged


def _prepare_finance(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    pay_date, _ = to_dates(frame["pay_date"])
    amount_text = number_text(frame["amount"])
    fen = to_fen(frame["amount"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "voucher_no": frame["voucher_no"],
            "invoice_no": frame["invoice_no"],
            "pay_date": pay_date,
            "dates_in_period": _within(pay_date, frame, ctx["tolerance"]),
            "amount_text": amount_text,
            "amount_fen": fen.astype("float64"),
            "fund_source": to_codes(frame["fund_source"], enums["fund_source"]),
            "category": to_codes(frame["category"], enums["category"]),
            "payee": frame["payee"],
        }
    )
    staged = pd.DataFrame(
        {
            "voucher_no": frame["voucher_no"],
            "pay_date": pay_date.dt.date,
            "amount_fen": fen,
            "fund_source": checked["fund_source"],
            "category": checked["category"],
            "payee": frame["payee"],
            "invoice_no": frame["invoice_no"],
            "description": frame["description"],
        }
    )
    return checked, staged


def _prepare_survey(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    survey_date, _ = to_dates(frame["survey_date"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "respondent_type": to_codes(frame["respondent_type"], enums["respondent_type"]),
            "survey_date": survey_date,
            "dates_in_period": _within(survey_date, frame, ctx["tolerance"]),
            "rating": to_codes(frame["rating"], enums["rating"]),
        }
    )
    staged = pd.DataFrame(
        {"respondent_type": checked["respondent_type"], "survey_date": survey_date.dt.date, "rating": checked["rating"]}
    )
    return checked, staged


# Counts and years are whole numbers the warehouse's INTEGER columns hold; anything beyond is an
# error in that cell ("missing or not a whole number"), never an overflow of the file.
_MAX_WHOLE = 2**31 - 1


def _whole_numbers(s: pd.Series) -> pd.Series:
    values, _ = to_numbers(s)
    return values.where((values == values.round(0)) & (values.abs() <= _MAX_WHOLE))


def _prepare_outcomes(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    year = _whole_numbers(frame["year"])
    gain_text = number_text(frame["avg_income_gain"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "year": year,
            "year_matches_period": year.isna() | (year == frame["_period_first"].dt.year),
            "low_income_households": _whole_numbers(frame["low_income_households"]),
            "households_with_skill": _whole_numbers(frame["households_with_skill"]),
            "trainees": _whole_numbers(frame["trainees"]),
            "avg_income_gain_text": gain_text,
        }
    )
    staged = pd.DataFrame(
        {
            "year": year.astype("Int64"),
            "low_income_households": checked["low_income_households"].astype("Int64"),
            "households_with_skill": checked["households_with_skill"].astype("Int64"),
            "trainees": checked["trainees"].astype("Int64"),
            "avg_income_gain_fen": to_fen(frame["avg_income_gain"]),
        }
    )
    return checked, staged


PREPARERS = {
    "roster": _prepare_roster,
    "finance": _prepare_finance,
    "survey": _prepare_survey,
    "outcomes": _prepare_outcomes,
}
