"""CSV reading edge cases of the fast path and its tolerant fallback: nothing is dropped and row
numbers stay the ones a person sees."""

from __future__ import annotations

import pytest

from yuhang_skills.intake.parse import read_submission

HEADER = "站点编码,调查对象,调查日期,评价"


@pytest.fixture
def contract(plan):
    return plan.contract.kinds["survey"], plan.contract.inbox


@pytest.mark.parametrize("body,expected", [
    # a record wider than the header (trailing comma): its named cells are kept
    ("S01,劳动者,2026-03-05,满意,\nS01,企业,2026-03-06,非常满意\n", [(2, "满意"), (3, "非常满意")]),
    # blank lines are dropped but still counted in the row numbers
    ("S01,劳动者,2026-03-05,满意\n\n , , , \nS01,企业,2026-03-06,不满意\n", [(2, "满意"), (5, "不满意")]),
    # a quoted line break inside a field: numbering follows records
    ('S01,劳动者,2026-03-05,"满\n意"\nS01,企业,2026-03-06,满意\n', [(2, "满\n意"), (3, "满意")]),
    # a record shorter than the header: missing cells are empty
    ("S01,劳动者,2026-03-05\nS01,企业,2026-03-06,满意\n", [(2, None), (3, "满意")]),
])
def test_rows_keep_their_numbers_and_cells(tmp_path, contract, body, expected):
    path = tmp_path / "survey.csv"
    path.write_text("余杭区满意度调查表\n" + HEADER + "\n" + body, encoding="utf-8")
    parsed = read_submission(path, *contract)
    assert parsed.header_row == 2
    frame = parsed.frame
    ratings = [None if v is None or v != v or str(v).strip() == "" else v for v in frame["rating"]]
    assert list(zip(frame["source_row"].tolist(), ratings)) == [(r + 1, v) for r, v in expected]


def test_site_batches_pack_small_folders_and_never_split_one(tmp_path):
    from yuhang_skills.intake.discover import InboxFile, site_batches

    def make(site: str, size: int, n: int = 2) -> list[InboxFile]:
        out = []
        for i in range(n):
            path = tmp_path / site / f"roster_{i}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
            out.append(InboxFile(str(path), f"2026-03/{site}/roster_{i}.csv", site, "2026-03", "roster"))
        return out

    files = make("B01", 600) + make("S01", 300) + [f for i in range(1, 6) for f in make(f"V{i:02d}", 10)]
    batches = site_batches(files, task_bytes=1000, task_max_sites=3)
    sites = [sorted({f.site_code for f in batch}) for batch in batches]
    assert sites[0] == ["B01"]  # 1,200 bytes: over the budget, alone
    assert all(len(s) <= 3 for s in sites)
    assert sorted(f.path for batch in batches for f in batch) == sorted(f.path for f in files)
    for batch in batches:  # a site's files are all in one batch
        for site in {f.site_code for f in batch}:
            assert sum(f.site_code == site for f in batch) == 2
    assert len(batches) == 3  # B01 | S01 + two villages | three villages
