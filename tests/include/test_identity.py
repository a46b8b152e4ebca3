"""Tests for yuhang_skills.intake.identity (GB 11643-1999 IDs, retirement age, pseudonymisation)."""

from __future__ import annotations

import datetime
import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from yuhang_skills.intake.identity import (
    check_character,
    hmac_hex,
    hmac_hex_one,
    mask_id,
    mask_name,
    normalise_id,
    parse_ids,
    retirement_age_months,
    working_age_status,
)

REF = datetime.date(2026, 1, 1)
VALID = "11010519491231002X"


def make_id(first17: str) -> str:
    return first17 + check_character(first17)


def parse_one(value: object, reference_date: datetime.date = REF) -> pd.Series:
    return parse_ids(pd.Series([value], dtype=object), reference_date).iloc[0]


def dates(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)))


# ------------------------------------------------------------------ check character


def test_check_character_known_examples() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"


def test_check_character_matches_iso7064_definition() -> None:
    # Independent reference: weights 2**(17-i) mod 11, check = (12 - sum mod 11) mod 11.
    rng = np.random.default_rng(7)
    for _ in range(200):
        first17 = "".join(rng.choice(list("0123456789"), 17))
        total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
        value = (12 - total % 11) % 11
        assert check_character(first17) == ("X" if value == 10 else str(value))


@pytest.mark.parametrize("bad", ["1101051949123100", "110105194912310021", "1101051949123100a", "１１０１０５１９４９１２３１００２"])
def test_check_character_rejects_non_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_character(bad)


# ------------------------------------------------------------------------ parse_ids


def test_valid_example() -> None:
    row = parse_one(VALID)
    assert row["id_number"] == VALID
    assert row["format_ok"] and row["checksum_ok"] and row["birth_date_ok"] and row["province_ok"]
    assert row["valid"]
    assert row["birth_date"] == pd.Timestamp("1949-12-31")
    assert row["sex"] == "F"  # sequence 002 is even


def test_parse_ids_dtypes_and_index() -> None:
    s = pd.Series([VALID, None, "garbage"], index=[10, 3, 7])
    out = parse_ids(s, REF)
    assert list(out.columns) == [
        "id_number", "format_ok", "checksum_ok", "birth_date",
        "birth_date_ok", "province_ok", "sex", "valid",
    ]  # fmt: skip
    assert list(out.index) == [10, 3, 7]
    assert out["birth_date"].dtype == "datetime64[ns]"
    for col in ["format_ok", "checksum_ok", "birth_date_ok", "province_ok", "valid"]:
        assert out[col].dtype == bool
    assert out["id_number"].tolist() == [VALID, None, "GARBAGE"]
    assert out["sex"].tolist() == ["F", None, None]
    assert out["valid"].tolist() == [True, False, False]


def test_lowercase_x_is_accepted_and_upper_cased() -> None:
    row = parse_one(VALID.lower())
    assert row["id_number"] == VALID
    assert row["valid"]


def test_wrong_checksum() -> None:
    row = parse_one("110105194912310021")
    assert row["format_ok"] and row["birth_date_ok"] and row["province_ok"]
    assert not row["checksum_ok"]
    assert not row["valid"]


def test_impossible_calendar_date() -> None:
    row = parse_one(make_id("11010520230230002"))
    assert row["checksum_ok"] and row["province_ok"]
    assert not row["birth_date_ok"]
    assert pd.isna(row["birth_date"])
    assert not row["valid"]


@pytest.mark.parametrize(
    ("birth", "ok"),
    [("20240229", True), ("20230229", False), ("19901301", False), ("19900100", False), ("19900431", False)],
)
def test_calendar_edge_dates(birth: str, ok: bool) -> None:
    assert bool(parse_one(make_id(f"330110{birth}123"))["birth_date_ok"]) is ok


def test_future_birth_date_relative_to_reference() -> None:
    assert parse_one(make_id("33011020260101123"), datetime.date(2026, 1, 1))["valid"]
    row = parse_one(make_id("33011020260102123"), datetime.date(2026, 1, 1))
    assert row["checksum_ok"]
    assert not row["birth_date_ok"]
    assert not row["valid"]


def test_birth_year_before_1900_rejected() -> None:
    assert not parse_one("440524188001010014")["birth_date_ok"]  # checksum-valid, born 1880
    assert not parse_one(make_id("44052418991231001"))["birth_date_ok"]
    assert parse_one(make_id("44052419000101001"))["valid"]


def test_province_99_rejected() -> None:
    row = parse_one(make_id("99010519491231002"))
    assert row["checksum_ok"] and row["birth_date_ok"]
    assert not row["province_ok"]
    assert not row["valid"]


@pytest.mark.parametrize("prefix", ["10", "20", "47", "90", "00"])
def test_non_province_codes_rejected(prefix: str) -> None:
    assert not parse_one(make_id(f"{prefix}010519491231002"))["province_ok"]


@pytest.mark.parametrize("prefix", ["11", "33", "46", "65", "71", "81", "82", "83"])
def test_province_codes_accepted(prefix: str) -> None:
    assert parse_one(make_id(f"{prefix}010519491231002"))["valid"]


def test_full_width_digits_and_whitespace() -> None:
    full_width = "１１０１０５　１９４９１２３１　００２ｘ"
    assert normalise_id(pd.Series([full_width])).iloc[0] == VALID
    row = parse_one(f" {full_width}\t")
    assert row["id_number"] == VALID
    assert row["valid"]


@pytest.mark.parametrize("first17", ["33011019850615123", "33018419920301456", "33011320001231078"])
def test_local_county_codes_pass(first17: str) -> None:
    row = parse_one(make_id(first17))
    assert row["valid"]


@pytest.mark.parametrize("value", [None, float("nan"), "", "   ", "11010519491231002", "1101051949123100200", "11010519491231002Y", "A1010519491231002X"])
def test_malformed_values(value: object) -> None:
    row = parse_one(value)
    assert not row["format_ok"]
    assert not row["valid"]
    assert row["sex"] is None
    assert pd.isna(row["birth_date"])


def test_missing_and_empty_normalise_to_none() -> None:
    out = normalise_id(pd.Series([None, float("nan"), " ", "\u3000"], index=list("abcd")))
    assert out.tolist() == [None, None, None, None]
    assert list(out.index) == list("abcd")


def test_sex_from_sequence_parity() -> None:
    out = parse_ids(pd.Series([make_id("33011019850615121"), make_id("33011019850615122")]), REF)
    assert out["sex"].tolist() == ["M", "F"]


def test_vectorised_parse_of_200k_generated_ids() -> None:
    n = 200_000
    rng = np.random.default_rng(2027)
    provinces = rng.choice([11, 31, 33, 44, 65], n)
    births = pd.to_datetime("1950-01-01") + pd.to_timedelta(rng.integers(0, 20_000, n), unit="D")
    seqs = rng.integers(0, 1000, n)
    kind = np.arange(n) % 10  # 1: bad checksum, 2: province 99, 3: 30 February, 4: lowercase x
    birth_texts = births.strftime("%Y%m%d")
    ids = []
    for i in range(n):
        province = "99" if kind[i] == 2 else f"{provinces[i]:02d}"
        birth = "19900230" if kind[i] == 3 else birth_texts[i]
        first17 = f"{province}0110{birth}{seqs[i]:03d}"
        check = check_character(first17)
        if kind[i] == 1:
            check = "0" if check != "0" else "1"
        ids.append(first17 + (check.lower() if kind[i] == 4 else check))
    out = parse_ids(pd.Series(ids), REF)
    tenth = n // 10
    assert len(out) == n
    assert out["format_ok"].all()
    assert (~out["checksum_ok"]).sum() == tenth
    assert (~out["province_ok"]).sum() == tenth
    assert (~out["birth_date_ok"]).sum() == tenth
    assert out["valid"].sum() == n - 3 * tenth
    assert (out["sex"] == "M").sum() == (seqs % 2 == 1).sum()
    valid_dates = out.loc[out["valid"] & (kind != 3), "birth_date"]
    assert (valid_dates.to_numpy() == births.to_numpy()[valid_dates.index]).all()


# ----------------------------------------------------------------- retirement age


@pytest.mark.parametrize(
    ("birth", "months"),
    [
        ("1950-06-15", 720),
        ("1964-12-31", 720),
        ("1965-01-01", 721),
        ("1965-04-30", 721),
        ("1965-05-01", 722),
        ("1976-08-15", 755),
        ("1976-09-01", 756),
        ("1990-03-03", 756),
    ],
)
def test_male_retirement_age(birth: str, months: int) -> None:
    assert retirement_age_months(dates(birth), pd.Series(["M"])).iloc[0] == months


@pytest.mark.parametrize(
    ("birth", "months"),
    [
        ("1969-12-31", 660),
        ("1970-01-01", 661),
        ("1970-04-15", 661),
        ("1970-05-15", 662),
        ("1981-08-01", 695),
        ("1981-09-01", 696),
        ("2000-01-01", 696),
    ],
)
def test_female_base_55_retirement_age(birth: str, months: int) -> None:
    sex = pd.Series(["F"])
    assert retirement_age_months(dates(birth), sex).iloc[0] == months  # default base 55
    assert retirement_age_months(dates(birth), sex, female_base=55).iloc[0] == months


@pytest.mark.parametrize(
    ("birth", "months"),
    [
        ("1974-12-31", 600),
        ("1975-01-01", 601),
        ("1975-02-28", 601),
        ("1975-03-01", 602),
        ("1984-10-01", 659),
        ("1984-11-01", 660),
        ("1995-06-01", 660),
    ],
)
def test_female_base_50_retirement_age(birth: str, months: int) -> None:
    assert retirement_age_months(dates(birth), pd.Series(["F"]), female_base=50).iloc[0] == months


def test_retirement_age_missing_inputs_and_index() -> None:
    births = pd.Series(pd.to_datetime(["1965-01-01", "1965-01-01", None, "1970-01-01"]), index=list("wxyz"))
    sex = pd.Series(["M", None, "M", np.nan], index=list("wxyz"), dtype=object)
    out = retirement_age_months(births, sex)
    assert str(out.dtype) == "Int64"
    assert list(out.index) == list("wxyz")
    assert out.iloc[0] == 721
    assert out.iloc[1:].isna().all()


def test_retirement_age_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        retirement_age_months(dates("1970-01-01"), pd.Series(["F"]), female_base=60)
    with pytest.raises(ValueError):
        retirement_age_months(dates("1970-01-01"), pd.Series(["男"]))
    with pytest.raises(ValueError):
        retirement_age_months(dates("1970-01-01"), pd.Series(["M"], index=[5]))


# ---------------------------------------------------------------------- working age


def status(birth: str, sex: str, on: str, **kwargs: int) -> pd.Series:
    return working_age_status(dates(birth), pd.Series([sex]), dates(on), **kwargs).iloc[0]


def test_exactly_16_is_working_age() -> None:
    row = status("2009-03-15", "F", "2025-03-15")
    assert row["age_years"] == 16
    assert row["in_working_age"]


def test_day_before_16th_birthday_is_not_working_age() -> None:
    row = status("2009-03-15", "F", "2025-03-14")
    assert row["age_years"] == 15
    assert not row["in_working_age"]


def test_retirement_date_boundary() -> None:
    # Man born 1965-05-10 retires at 60y2m -> 2025-07-10.
    day_before = status("1965-05-10", "M", "2025-07-09")
    on_day = status("1965-05-10", "M", "2025-07-10")
    assert day_before["retirement_date"] == pd.Timestamp("2025-07-10")
    assert day_before["in_working_age"]
    assert on_day["age_years"] == 60
    assert not on_day["in_working_age"]


def test_retirement_date_clamped_to_month_end() -> None:
    # Woman (base 55) born 1970-01-31 retires at 55y1m -> 2025-02-31 -> 2025-02-28.
    row = status("1970-01-31", "F", "2025-02-27")
    assert row["retirement_date"] == pd.Timestamp("2025-02-28")
    assert row["in_working_age"]
    assert not status("1970-01-31", "F", "2025-02-28")["in_working_age"]


def test_female_base_50_changes_working_age() -> None:
    # Born 1975-01-01: base 55 -> retires 2030-01 + delay; base 50 -> 50y1m = 2025-02-01.
    assert status("1975-01-01", "F", "2025-06-01")["in_working_age"]
    row = status("1975-01-01", "F", "2025-06-01", female_base=50)
    assert row["retirement_date"] == pd.Timestamp("2025-02-01")
    assert not row["in_working_age"]


def test_minimum_age_parameter() -> None:
    assert status("2007-03-15", "M", "2025-03-15", minimum_age_years=18)["in_working_age"]
    assert not status("2007-03-16", "M", "2025-03-15", minimum_age_years=18)["in_working_age"]


def test_working_age_missing_inputs_and_dtypes() -> None:
    births = pd.Series(pd.to_datetime(["1990-01-01", None, "1990-01-01", "1990-01-01"]), index=[4, 3, 2, 1])
    sex = pd.Series(["M", "M", None, "F"], index=[4, 3, 2, 1], dtype=object)
    on = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-01", None]), index=[4, 3, 2, 1])
    out = working_age_status(births, sex, on)
    assert list(out.index) == [4, 3, 2, 1]
    assert str(out["age_years"].dtype) == "Int64"
    assert out["retirement_date"].dtype == "datetime64[ns]"
    assert out["in_working_age"].dtype == bool
    assert out["in_working_age"].tolist() == [True, False, False, False]
    assert out["age_years"].iloc[0] == 36
    assert pd.isna(out["age_years"].iloc[1]) and pd.isna(out["age_years"].iloc[3])
    assert out["age_years"].iloc[2] == 36  # age does not need sex
    assert pd.isna(out["retirement_date"].iloc[2])
    assert out["retirement_date"].iloc[3] == pd.Timestamp("2048-01-01")  # 1990 woman: 58y


def test_working_age_accepts_parse_ids_output() -> None:
    parsed = parse_ids(pd.Series([make_id("33011019650510123"), "bad"]), REF)
    on = pd.Series(pd.to_datetime(["2025-07-09", "2025-07-09"]))
    out = working_age_status(parsed["birth_date"], parsed["sex"], on)
    assert out["in_working_age"].tolist() == [True, False]


# ----------------------------------------------------------------- pseudonymisation


def reference_hmac(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def test_hmac_matches_reference_and_is_deterministic() -> None:
    s = pd.Series([VALID, None, " " + VALID.lower() + " "], index=["a", "b", "c"])
    first = hmac_hex(s, "secret")
    assert first.tolist() == hmac_hex(s, b"secret").tolist()
    assert list(first.index) == ["a", "b", "c"]
    assert first["a"] == reference_hmac(VALID, b"secret")
    assert first["b"] is None
    assert first["c"] == first["a"]  # normalised before hashing
    assert len(first["a"]) == 64 and all(ch in "0123456789abcdef" for ch in first["a"])
    assert VALID not in first["a"] and VALID.lower() not in first["a"]


def test_hmac_is_key_dependent() -> None:
    s = pd.Series([VALID, "张三丰"])
    assert (hmac_hex(s, "key-one") != hmac_hex(s, "key-two")).all()
    assert hmac_hex_one(VALID, "key-one") != hmac_hex_one(VALID, "key-two")


def test_hmac_of_names_nfkc_and_strip() -> None:
    names = pd.Series([" 张三丰 ", "Ｗａｎｇ", "wang", None, "  "])
    out = hmac_hex(names, "k", kind="name")
    assert out.iloc[0] == reference_hmac("张三丰", b"k")
    assert out.iloc[1] == reference_hmac("Wang", b"k")
    assert out.iloc[2] == reference_hmac("wang", b"k")  # names are not case-folded
    assert out.iloc[3] is None and out.iloc[4] is None
    assert "张三丰" not in out.iloc[0]
    assert hmac_hex_one("张三丰", "k", kind="name") == out.iloc[0]


def test_hmac_scalar_and_argument_errors() -> None:
    assert hmac_hex_one(VALID.lower(), "k") == reference_hmac(VALID, b"k")
    with pytest.raises(ValueError):
        hmac_hex_one("  ", "k")
    with pytest.raises(ValueError):
        hmac_hex(pd.Series([VALID]), "")
    with pytest.raises(ValueError):
        hmac_hex(pd.Series([VALID]), "k", kind="phone")  # type: ignore[arg-type]


def test_mask_id() -> None:
    s = pd.Series(["330110199001011234", None, float("nan"), VALID.lower(), "12345"], index=list("abcde"))
    assert mask_id(s).tolist() == ["330110********1234", None, None, "110105********002X", "********"]
    assert list(mask_id(s).index) == list("abcde")


def test_mask_name() -> None:
    s = pd.Series(["张三丰", "李四", "王", None, float("nan"), " 欧阳娜娜 "])
    assert mask_name(s).tolist() == ["张**", "李*", "王", None, None, "欧***"]
