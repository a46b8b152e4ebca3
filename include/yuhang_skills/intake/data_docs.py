"""Great Expectations Data Docs: HTML pages of the suites and of every validation run.

Pages are rendered with GX's own Data Docs renderers into ``<data_docs_dir>`` (default
``var/data_docs``; setting ``YUHANG_DATA_DOCS_DIR`` / variable ``yuhang_data_docs_dir``):
``index.html`` lists the suites (``suites/<kind>_suite.html``) and the validation runs
(``validations/<kind>/<site>/<run>.html``, one per suite run over a site's new files of one
kind). The validated frames hold no clear personal data (ID numbers and names are already
keyed hashes), so neither do the pages.

A suite run covers several sites' files of one kind; each site gets its own page, showing its
own rows only (``result_for_rows``). Every value a site sent is HTML-escaped before GX renders
it, so a payee such as ``<img src=x onerror=…>`` is shown as text and never runs in the page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def _page_view() -> Any:
    """One page view per process: its Jinja environment compiles GX's templates once and keeps
    them; a view made per page compiled them again for every page (most of the intake's CPU)."""
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()


def _render(document_source: Any, renderer: str) -> str:
    from great_expectations.render import renderer as renderers

    document = getattr(renderers, renderer)().render(document_source)
    return str(_page_view().render(document))


_VALUE_KEYS = ("unexpected_list", "partial_unexpected_list")
_INDEX_KEYS = ("unexpected_index_list", "partial_unexpected_index_list")


def _neutral(value: Any) -> Any:
    """A site's value as inert text: strings escaped, containers walked."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, dict):
        return {_neutral(k): _neutral(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_neutral(v) for v in value]
    return value


def result_for_rows(result: Any, rows: set[int]) -> Any:
    """A copy of a suite result that shows only the failures of ``rows`` (row positions in the
    validated frame), counts recomputed for them, every site value escaped."""
    import copy
    from collections import Counter

    # A copy of the suite result and of each expectation's result dict; everything below replaces
    # values rather than changing them in place, so the rest (configurations, meta) is shared, not
    # deep-copied for every page.
    result = copy.copy(result)
    result.results = [copy.copy(r) for r in result.results]
    for r in result.results:
        if r.result is not None:
            r.result = dict(r.result)
        data = r.result or {}
        index = data.get("unexpected_index_list")
        if index is None:
            for key in _VALUE_KEYS + ("partial_unexpected_counts",):
                if key in data:
                    data[key] = _neutral(data[key])
            continue
        values = data.get("unexpected_list") or [None] * len(index)
        keep = [(i, v) for i, v in zip(index, values, strict=True) if (i if isinstance(i, int) else -1) in rows]
        kept_values = [_neutral(v) for _, v in keep]
        data["element_count"] = len(rows)
        data["unexpected_count"] = len(keep)
        data["unexpected_percent"] = 100.0 * len(keep) / len(rows) if rows else 0.0
        data["unexpected_index_list"] = [i for i, _ in keep]
        data["partial_unexpected_index_list"] = [i for i, _ in keep][:20]
        data["unexpected_list"] = kept_values
        data["partial_unexpected_list"] = kept_values[:20]
        counted = Counter(v if not isinstance(v, (dict, list)) else repr(v) for v in kept_values)
        data["partial_unexpected_counts"] = [{"value": v, "count": c} for v, c in counted.most_common(20)]
        for key in ("unexpected_percent_total", "unexpected_percent_nonmissing"):
            if key in data:
                data[key] = data["unexpected_percent"]
        data.pop("unexpected_index_query", None)
        r.success = not keep
    result.success = all(r.success for r in result.results)
    return result


def write_validation_page(docs_dir: Path, kind: str, site_code: str, sha256s: list[str], result: Any) -> Path:
    """One page per suite run; the name derives from the files validated, so a rerun rewrites it."""
    run = hashlib.sha256("".join(sorted(sha256s)).encode()).hexdigest()[:16]
    path = docs_dir / "validations" / kind / (site_code or "unknown") / f"{run}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_render(result, "ValidationResultsPageRenderer"), encoding="utf-8")
    return path


def write_suite_pages(docs_dir: Path, suites: dict[str, Any]) -> list[Path]:
    paths = []
    for kind, suite in suites.items():
        path = docs_dir / "suites" / f"{kind}_suite.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(suite, "ExpectationSuitePageRenderer"), encoding="utf-8")
        paths.append(path)
    return paths


def write_index(docs_dir: Path) -> Path:
    """``index.html`` linking every suite page and validation page under ``docs_dir``."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    suites = sorted((docs_dir / "suites").glob("*.html"))
    runs = sorted((docs_dir / "validations").glob("*/*/*.html"))

    def link(p: Path, label: str) -> str:
        return f'<li><a href="{html.escape(p.relative_to(docs_dir).as_posix())}">{html.escape(label)}</a></li>'

    rows = "\n".join(
        link(
            p,
            f"{p.parts[-3]} · {p.parts[-2]} · run {p.stem} · "
            f"{dt.datetime.fromtimestamp(p.stat().st_mtime).strftime('%Y-%m-%d %H:%M')}",
        )
        for p in runs
    )
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>数据校验文档 Data Docs</title>
<style>body{{font-family:sans-serif;margin:2em}} li{{margin:.2em 0}}</style></head>
<body><h1>数据校验文档 · Data Docs</h1>
<h2>校验规则 Expectation suites</h2><ul>{"".join(link(p, p.stem) for p in suites)}</ul>
<h2>校验记录 Validation runs ({len(runs)})</h2><ul>{rows}</ul>
</body></html>
"""
    index = docs_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
