"""Great Expectations Data Docs: HTML pages of the suites and of every validation run.

Pages are rendered with GX's own Data Docs renderers into ``<data_docs_dir>`` (default
``var/data_docs``; setting ``YUHANG_DATA_DOCS_DIR`` / variable ``yuhang_data_docs_dir``):
``index.html`` lists the suites (``suites/<kind>_suite.html``) and the validation runs
(``validations/<kind>/<site>/<run>.html``, one per suite run over a site's new files of one
kind). The validated frames hold no clear personal data (ID numbers and names are already
keyed hashes), so neither do the pages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from pathlib import Path
from typing import Any


def _render(document_source: Any, renderer: str) -> str:
    from great_expectations.render import renderer as renderers
    from great_expectations.render.view import DefaultJinjaPageView

    document = getattr(renderers, renderer)().render(document_source)
    return DefaultJinjaPageView().render(document)


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
        link(p, f"{p.parts[-3]} · {p.parts[-2]} · run {p.stem} · "
                f"{dt.datetime.fromtimestamp(p.stat().st_mtime).strftime('%Y-%m-%d %H:%M')}")
        for p in runs
    )
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>数据校验文档 Data Docs</title>
<style>body{{font-family:sans-serif;margin:2em}} li{{margin:.2em 0}}</style></head>
<body><h1>数据校验文档 · Data Docs</h1>
<h2>校验规则 Expectation suites</h2><ul>{''.join(link(p, p.stem) for p in suites)}</ul>
<h2>校验记录 Validation runs ({len(runs)})</h2><ul>{rows}</ul>
</body></html>
"""
    index = docs_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
