"""Citizen identity rules: ID validation, statutory working age and pseudonymisation.

Resident identity numbers follow GB 11643-1999: 18 characters made of a 6-digit
address code, an 8-digit birth date (YYYYMMDD), a 3-digit sequence code (odd for
men, even for women) and a check character ``"10X98765432"[sum(d_i * w_i) mod 11]``
with weights ``2**(17-i) mod 11`` = 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 (ISO 7064
MOD 11-2).  An ID is accepted when it has that format, the check character matches,
the birth date is a real calendar date from 1900 on and not after the reference
date, and the first two digits are a province-level code.  The full 6-digit county
code is deliberately not checked: codes are reassigned over time (e.g. Hangzhou's
330110, 330113 and 330184) and old numbers stay valid for life.

Statutory retirement age follows the NPC Standing Committee decision of 2024-09-13
on gradually raising the statutory retirement age (in force 2025-01-01).  Each
group has a base age and, from its first affected birth month, the age rises by one
month per ``step`` birth months up to a cap:

=====================  =====  ==============  ====  =======
group                  base   first affected  step  cap
=====================  =====  ==============  ====  =======
men                    60 y   1965-01         4     +36 m
women, base 55         55 y   1970-01         4     +36 m
women, base 50         50 y   1975-01         2     +60 m
=====================  =====  ==============  ====  =======

``delay = 0`` for births before the first affected month, otherwise
``min(cap, months_since // step + 1)``.  Which base applies to a woman cannot be
read from the ID, so it is the ``female_base`` parameter.  A person is of legal
working age on a date when they are at least 16 and have not reached their
retirement date (birth date plus the retirement age in months, same day of month,
clamped to the month end).

Names and ID numbers are never stored in clear: they are replaced by an HMAC-SHA256
of the normalised value and shown masked.

All Series functions are vectorised and keep the index of their input.  The one
exception to numpy-level vectorisation is HMAC, which has no array implementation:
it runs one C-level ``hashlib`` call per value.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "PROVINCE_CODES",
    "check_character",
    "hmac_hex",
    "hmac_hex_one",
    "mask_id",
    "mask_name",
    "normalise_id",
    "parse_ids",
    "retirement_age_months",
    "working_age_status",
]

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_CHARS = "10X98765432"
_CHECK_BYTES = np.frombuffer(_CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_ID_PATTERN = r"[0-9]{17}[0-9X]"
_ID_LENGTH = 18
_MIN_BIRTH_YEAR = 1900

#: Province-level administrative division codes (first two digits of an ID).
PROVINCE_CODES: frozenset[int] = frozenset(
    {
        11, 12, 13, 14, 15,
        21, 22, 23,
        31, 32, 33, 34, 35, 36, 37,
        41, 42, 43, 44, 45, 46,
        50, 51, 52, 53, 54,
        61, 62, 63, 64, 65,
        71, 81, 82, 83,
    }
)  # fmt: skip
_PROVINCE_ARRAY = np.array(sorted(PROVINCE_CODES), dtype=np.int64)

_ID_MASK = "*" * 8
_ID_SHOWN_HEAD = 6
_ID_SHOWN_TAIL = 4


@dataclass(frozen=True)
class _Schedule:
    """Retirement-age schedule of one group under the 2024-09-13 decision."""

    base_months: int
    start_year: int  # first affected birth month is January of this year
    step_months: int
    cap_months: int

    def age_months(self, birth_year: np.ndarray, birth_month: np.ndarray) -> np.ndarray:
        months_since = (birth_year - self.start_year) * 12 + (birth_month - 1)
        delay = np.minimum(self.cap_months, months_since // self.step_months + 1)
        return self.base_months + np.where(months_since < 0, 0, delay)


_MALE_SCHEDULE = _Schedule(base_months=60 * 12, start_year=1965, step_months=4, cap_months=36)
_FEMALE_SCHEDULES: dict[int, _Schedule] = {
    55: _Schedule(base_months=55 * 12, start_year=1970, step_months=4, cap_months=36),
    50: _Schedule(base_months=50 * 12, start_year=1975, step_months=2, cap_months=60),
}


# --------------------------------------------------------------------------- helpers


def _to_object(s: pd.Series) -> pd.Series:
    """Nullable string Series -> object Series with ``None`` for missing values."""
    return s.astype(object).where(s.notna(), None)


def _normalised_id_strings(s: pd.Series) -> pd.Series:
    """NFKC, all whitespace removed, upper-case, empty -> NA (``string`` dtype)."""
    out = s.astype("string").str.normalize("NFKC").str.replace(r"\s+", "", regex=True).str.upper()
    return out.mask(out == "")


def _normalised_name_strings(s: pd.Series) -> pd.Series:
    """NFKC, stripped, empty -> NA (``string`` dtype)."""
    out = s.astype("string").str.normalize("NFKC").str.strip()
    return out.mask(out == "")


def _month_start(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    """First day of each (year, month) as ``datetime64[M]``; month may overflow 1..12."""
    return ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")


def _days_in_month(month_start: np.ndarray) -> np.ndarray:
    return ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)


@dataclass(frozen=True)
class _DateParts:
    days: np.ndarray  # datetime64[D], NaT where missing
    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    present: np.ndarray  # bool


def _date_parts(s: pd.Series) -> _DateParts:
    days = pd.to_datetime(s).to_numpy(dtype="datetime64[D]")
    present = ~np.isnat(days)
    filled = np.where(present, days, np.datetime64("1970-01-01", "D"))
    month_start = filled.astype("datetime64[M]")
    return _DateParts(
        days=days,
        year=filled.astype("datetime64[Y]").astype(np.int64) + 1970,
        month=month_start.astype(np.int64) % 12 + 1,
        day=(filled - month_start.astype("datetime64[D]")).astype(np.int64) + 1,
        present=present,
    )


def _require_same_index(*series: pd.Series) -> None:
    first = series[0].index
    if not all(s.index.equals(first) for s in series[1:]):
        raise ValueError("all input Series must share the same index")


def _key_bytes(key: str | bytes) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise ValueError("HMAC key must not be empty")
    return raw


# ------------------------------------------------------------------------ ID numbers


def normalise_id(s: pd.Series) -> pd.Series:
    """NFKC (full-width -> ASCII), strip all whitespace, upper-case; empty -> None."""
    return _to_object(_normalised_id_strings(s))


def check_character(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    digits = np.frombuffer(first17.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    return _CHECK_CHARS[int(digits @ _WEIGHTS) % 11]


def parse_ids(s: pd.Series, reference_date: datetime.date) -> pd.DataFrame:
    """Validate and decode ID numbers.

    Columns: ``id_number`` (normalised), ``format_ok``, ``checksum_ok``,
    ``birth_date`` (datetime64[ns]; NaT unless ``birth_date_ok``), ``birth_date_ok``
    (real date, year >= 1900, not after ``reference_date``), ``province_ok``,
    ``sex`` ("M"/"F", None when the format is wrong) and ``valid`` (all checks).
    """
    ids = _normalised_id_strings(s)
    n = len(ids)
    format_ok = ids.str.fullmatch(_ID_PATTERN).fillna(False).to_numpy(dtype=bool)

    chars = ids[format_ok].to_numpy(dtype=f"S{_ID_LENGTH}").view(np.uint8).reshape(-1, _ID_LENGTH)
    digits = chars[:, :17].astype(np.int64) - ord("0")

    checksum = chars[:, 17] == _CHECK_BYTES[(digits @ _WEIGHTS) % 11]

    year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    month_start = _month_start(year, np.clip(month, 1, 12))
    birth = month_start.astype("datetime64[D]") + (day - 1)
    birth_ok = (
        (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _days_in_month(month_start))
        & (year >= _MIN_BIRTH_YEAR)
        & (birth <= np.datetime64(reference_date, "D"))
    )

    province = np.isin(digits[:, 0] * 10 + digits[:, 1], _PROVINCE_ARRAY)
    sex = np.where(digits[:, 16] % 2 == 1, "M", "F").astype(object)

    def scatter(values: np.ndarray, fill: Any, dtype: npt.DTypeLike) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[format_ok] = values
        return out

    checksum_ok = scatter(checksum, False, bool)
    birth_date_ok = scatter(birth_ok, False, bool)
    province_ok = scatter(province, False, bool)
    return pd.DataFrame(
        {
            "id_number": _to_object(ids),
            "format_ok": format_ok,
            "checksum_ok": checksum_ok,
            "birth_date": scatter(
                np.where(birth_ok, birth, np.datetime64("NaT", "D")),
                np.datetime64("NaT", "D"),
                "datetime64[D]",
            ).astype("datetime64[ns]"),
            "birth_date_ok": birth_date_ok,
            "province_ok": province_ok,
            "sex": pd.Series(scatter(sex, None, object), index=s.index, dtype=object),
            "valid": format_ok & checksum_ok & birth_date_ok & province_ok,
        },
        index=s.index,
    )


# ------------------------------------------------------------- retirement and age


def retirement_age_months(birth_date: pd.Series, sex: pd.Series, female_base: int = 55) -> pd.Series:
    """Statutory retirement age in total months (60y1m -> 721), ``Int64``.

    ``sex`` holds "M"/"F"; NA where sex or birth date is missing.  ``female_base``
    (50 or 55) selects the women's schedule.
    """
    if female_base not in _FEMALE_SCHEDULES:
        raise ValueError(f"female_base must be one of {sorted(_FEMALE_SCHEDULES)}, got {female_base}")
    _require_same_index(birth_date, sex)
    sex_missing = sex.isna().to_numpy()
    is_male = (sex == "M").to_numpy(dtype=bool)
    is_female = (sex == "F").to_numpy(dtype=bool)
    unknown = ~(sex_missing | is_male | is_female)
    if unknown.any():
        raise ValueError(f"sex must be 'M', 'F' or missing, got {sorted(map(str, set(sex[unknown])))}")

    parts = _date_parts(birth_date)
    months = np.where(
        is_male,
        _MALE_SCHEDULE.age_months(parts.year, parts.month),
        _FEMALE_SCHEDULES[female_base].age_months(parts.year, parts.month),
    )
    missing = sex_missing | ~parts.present
    return pd.Series(pd.arrays.IntegerArray(months.astype(np.int64), missing), index=birth_date.index)


def working_age_status(
    birth_date: pd.Series,
    sex: pd.Series,
    on_date: pd.Series,
    female_base: int = 55,
    minimum_age_years: int = 16,
) -> pd.DataFrame:
    """Legal working age on ``on_date`` (e.g. the training start date).

    Columns: ``age_years`` (completed years, ``Int64``), ``retirement_date``
    (datetime64[ns]) and ``in_working_age``: age >= ``minimum_age_years`` and
    ``on_date`` before the retirement date; False where any input is missing.
    """
    _require_same_index(birth_date, sex, on_date)
    retirement_months = retirement_age_months(birth_date, sex, female_base)
    birth = _date_parts(birth_date)
    on = _date_parts(on_date)

    before_birthday = (on.month < birth.month) | ((on.month == birth.month) & (on.day < birth.day))
    age = on.year - birth.year - before_birthday.astype(np.int64)
    age_known = birth.present & on.present

    has_retirement = retirement_months.notna().to_numpy()
    target_start = _month_start(birth.year, birth.month + retirement_months.fillna(0).to_numpy(np.int64))
    retirement = target_start.astype("datetime64[D]") + (np.minimum(birth.day, _days_in_month(target_start)) - 1)
    retirement = np.where(has_retirement, retirement, np.datetime64("NaT", "D"))

    in_working_age = age_known & has_retirement & (age >= minimum_age_years) & (on.days < retirement)
    return pd.DataFrame(
        {
            "age_years": pd.arrays.IntegerArray(age, ~age_known),
            "retirement_date": retirement.astype("datetime64[ns]"),
            "in_working_age": in_working_age,
        },
        index=birth_date.index,
    )


# ----------------------------------------------------------------- pseudonymisation


def hmac_hex(s: pd.Series, key: str | bytes, *, kind: Literal["id", "name"] = "id") -> pd.Series:
    """HMAC-SHA256 hex digest of each normalised value; None/NaN/empty -> None.

    ``kind="id"`` normalises as :func:`normalise_id` (stripped, upper-case), so the
    digest of a raw ID equals that of ``parse_ids(...)["id_number"]``;
    ``kind="name"`` applies NFKC and strips.
    """
    if kind == "id":
        normalised = _normalised_id_strings(s)
    elif kind == "name":
        normalised = _normalised_name_strings(s)
    else:
        raise ValueError(f"kind must be 'id' or 'name', got {kind!r}")
    keyed = hmac.new(_key_bytes(key), digestmod=hashlib.sha256)

    def digest(value: str) -> str:
        mac = keyed.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    # HMAC has no array implementation; one C-level hashlib call per value.
    present = normalised.notna().to_numpy()
    out = np.full(len(normalised), None, dtype=object)
    out[present] = [digest(v) for v in normalised[present].to_numpy(dtype=object)]
    return pd.Series(out, index=s.index, dtype=object)


def hmac_hex_one(value: str, key: str | bytes, *, kind: Literal["id", "name"] = "id") -> str:
    """Scalar :func:`hmac_hex`; raises ValueError for a value that normalises to empty."""
    digest = hmac_hex(pd.Series([value], dtype=object), key, kind=kind).iloc[0]
    if digest is None:
        raise ValueError("cannot hash an empty value")
    return digest


def mask_id(s: pd.Series) -> pd.Series:
    """``330110199001011234`` -> ``330110********1234``; None stays None.

    Values that do not normalise to 18 characters are fully masked (``********``)
    so that malformed input never shows more than a well-formed ID would.
    """
    ids = _normalised_id_strings(s)
    partial = ids.str[:_ID_SHOWN_HEAD] + _ID_MASK + ids.str[-_ID_SHOWN_TAIL:]
    return _to_object(partial.where(ids.str.len() == _ID_LENGTH, _ID_MASK).mask(ids.isna()))


def mask_name(s: pd.Series) -> pd.Series:
    """``张三丰`` -> ``张**`` (first character, one asterisk per further character)."""
    names = _normalised_name_strings(s)
    return _to_object(names.str[:1] + names.str[1:].str.replace(r"(?s).", "*", regex=True))
