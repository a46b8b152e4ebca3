"""The catalogue of problem codes and labels (``catalogue.yaml`` next to this module): every message
the pipeline gives people about a problem, in Chinese and English, with the fix to suggest.

Loaded once and checked at load: every entry has ``zh`` and ``en`` text (and a fix in both
languages or in neither), no code appears twice, and every field of the text has a name. Code
that raises a problem names its code and supplies the fields::

    en, zh = catalogue.text("intake.file_location.period_folder", period="2026-3")
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
# How a fix follows its problem, per language.
FIX_SEPARATOR = {"en": "; ", "zh": ","}
_FIELDS = ("zh", "en", "fix_zh", "fix_en")


class CatalogueError(ValueError):
    """The catalogue file breaks its own rules (the file and the code are named)."""


@dataclass(frozen=True)
class Entry:
    code: str
    zh: str
    en: str
    fix_zh: str | None = None
    fix_en: str | None = None

    def render(self, language: str, **fields: Any) -> str:
        """The problem in ``language`` (``zh`` or ``en``), the fix after it, fields filled in."""
        text = getattr(self, language).format(**fields)
        fix = getattr(self, f"fix_{language}")
        return text + FIX_SEPARATOR[language] + fix.format(**fields) if fix else text


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise CatalogueError(f"code {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _fields_named(text: str) -> bool:
    """Whether every field of ``text`` has a name (``{period}``, never ``{}``) and its braces balance."""
    try:
        return all(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)
    except ValueError:
        return False


def load(path: Path = CATALOGUE_PATH) -> dict[str, Entry]:
    """Every entry of the catalogue at ``path``, checked."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except CatalogueError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CatalogueError(f"{path}: expected a mapping of codes to entries")
    entries: dict[str, Entry] = {}
    for code, spec in raw.items():
        where = f"{path}: code {code!r}"
        if not isinstance(spec, dict):
            raise CatalogueError(f"{where}: expected zh and en text")
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise CatalogueError(f"{where}: unknown keys {sorted(unknown)} (allowed: {', '.join(_FIELDS)})")
        for key in ("zh", "en"):
            if not isinstance(spec.get(key), str) or not spec[key].strip():
                raise CatalogueError(f"{where}: no {key} text")
        if ("fix_zh" in spec) != ("fix_en" in spec):
            raise CatalogueError(f"{where}: a fix needs both fix_zh and fix_en")
        for key in ("fix_zh", "fix_en"):
            if key in spec and (not isinstance(spec[key], str) or not spec[key].strip()):
                raise CatalogueError(f"{where}: {key} is empty")
        for key in _FIELDS:
            if key in spec and not _fields_named(spec[key]):
                raise CatalogueError(f"{where}: {key} has a field without a name ({{}}) or unbalanced braces")
        entries[str(code)] = Entry(str(code), spec["zh"], spec["en"], spec.get("fix_zh"), spec.get("fix_en"))
    return entries


@lru_cache(maxsize=1)
def entries() -> dict[str, Entry]:
    """The package's catalogue, loaded once."""
    return load()


def entry(code: str) -> Entry:
    try:
        return entries()[code]
    except KeyError:
        raise KeyError(f"problem code {code!r} is not in the catalogue ({CATALOGUE_PATH})") from None


def text(code: str, **fields: Any) -> tuple[str, str]:
    """(English, Chinese) text of ``code`` with its fix, ``fields`` filled in."""
    found = entry(code)
    return found.render("en", **fields), found.render("zh", **fields)


def family(prefix: str) -> dict[str, Entry]:
    """The entries whose code starts with ``prefix`` (``evaluation.unit.``), by the rest of their
    code, in the catalogue's order."""
    return {code[len(prefix) :]: e for code, e in entries().items() if code.startswith(prefix)}


def labels(prefix: str) -> dict[str, str]:
    """A code list's Chinese labels: code -> zh, in the catalogue's order."""
    return {code: e.zh for code, e in family(prefix).items()}


def zh(code: str, **fields: Any) -> str:
    """The Chinese text of ``code`` (a label, or a problem with its fix)."""
    return entry(code).render("zh", **fields)
