"""The SQL models under ``include/yuhang_skills/sql``, and the order they are built in.

The SQL files are plain SELECT statements, one model per file, named after the table or view
they build, in three layers: ``staging`` (``stg_*``: the rows of current submissions, over the
``raw_*`` tables intake writes), ``intermediate`` (``int_*``) and ``marts``. A model's
dependencies are the tables its SQL reads (what follows ``from`` and ``join``, less its own
common table expressions): each model is built after the models it reads, and may read its own
layer or an earlier one, never a later one. A leading comment line ``-- materialized: view``
makes a view (staging does, so a million raw rows are not copied and the integrity checks use
the raw tables' indexes); a model is a table otherwise. Each model is rebuilt whole on every
run, so reruns give identical tables.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from yuhang_skills.core import warehouse

LAYER_ORDER = ("staging", "intermediate", "marts")  # a model reads its own layer or the ones before
MATERIALISATIONS = ("table", "view")
_HEADER = re.compile(r"^--\s*materiali[sz]ed:\s*(\w+)\s*$", re.MULTILINE)
_READS = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_CTE = re.compile(r"(?:\bwith|,)\s*([a-z_][a-z0-9_]*)\s+as\s*\(", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")


class ModelError(ValueError):
    """A model that cannot be built in any order: a cycle, or a read of a later layer."""


@dataclass(frozen=True)
class Model:
    """One SQL file under sql/<layer>/: the table or view it builds and the tables it reads."""

    name: str
    layer: str
    sql: str
    materialized: str
    reads: frozenset[str]

    @classmethod
    def from_file(cls, path: Path, layer: str) -> Model:
        text = path.read_text(encoding="utf-8")
        leading = "\n".join(itertools.takewhile(lambda line: line.startswith("--"), text.splitlines()))
        header = _HEADER.search(leading)
        materialized = header.group(1).lower() if header else "table"
        if materialized not in MATERIALISATIONS:
            raise ModelError(f"{path}: materialized: {materialized!r} is not one of {', '.join(MATERIALISATIONS)}")
        sql = text.strip().rstrip(";")
        return cls(path.stem, layer, sql, materialized, frozenset(reads(sql)))


def reads(sql: str) -> set[str]:
    """The tables and views a SELECT reads (what follows ``from`` or ``join``), without its own
    common table expressions."""
    code = _COMMENT.sub("", sql)
    ctes = {name.lower() for name in _CTE.findall(code)}
    return {name.lower() for name in _READS.findall(code)} - ctes


def discover(sql_dir: Path) -> dict[str, Model]:
    """Every model under ``sql_dir``'s layer folders, by name."""
    found: dict[str, Model] = {}
    for layer in LAYER_ORDER:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            model = Model.from_file(path, layer)
            if model.name in found:
                raise ModelError(f"model {model.name} is defined in {found[model.name].layer} and {layer}")
            found[model.name] = model
    return found


def build_order(models: Mapping[str, Model]) -> list[Model]:
    """The models in an order where each comes after every model it reads (layer, then name,
    among those ready). A model reading a model of a later layer is refused; a cycle is an
    error naming its models."""
    rank = {layer: n for n, layer in enumerate(LAYER_ORDER)}
    upstream: dict[str, set[str]] = {}
    for model in models.values():
        deps = {name for name in model.reads if name in models and name != model.name}
        later = sorted(d for d in deps if rank[models[d].layer] > rank[model.layer])
        if later:
            raise ModelError(
                f"{model.layer} model {model.name} reads {', '.join(later)} of a later layer "
                f"({', '.join(models[d].layer for d in later)})"
            )
        upstream[model.name] = deps
    order: list[Model] = []
    done: set[str] = set()
    waiting = dict(upstream)
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if deps <= done), key=lambda n: (rank[models[n].layer], n))
        if not ready:
            raise ModelError(f"models read each other in a cycle: {', '.join(_cycle(waiting, done))}")
        for name in ready:
            order.append(models[name])
            done.add(name)
            del waiting[name]
    return order


def _cycle(waiting: Mapping[str, set[str]], done: set[str]) -> list[str]:
    """One cycle among the models still waiting, as a path that returns to its start."""
    path: list[str] = []
    name = min(waiting)
    while name not in path:
        path.append(name)
        name = min(d for d in waiting[name] if d not in done)
    return [*path[path.index(name) :], name]


def model_sql(sql_dir: Path, layer: str, name: str) -> str:
    return Model.from_file(sql_dir / layer / f"{name}.sql", layer).sql


def build_models(
    engine: sa.Engine, sql_dir: Path, layers: list[str] | None = None, seconds: dict[str, float] | None = None
) -> dict[str, int]:
    """Rebuild every model of ``layers`` (all by default) from its SQL file, each after the models
    it reads; returns row counts. ``seconds``, when given, receives each model's build time (its
    statement, without the row count)."""
    wanted = set(layers or LAYER_ORDER)
    counts: dict[str, int] = {}
    for model in build_order(discover(sql_dir)):
        if model.layer not in wanted:
            continue
        with engine.begin() as conn:
            warehouse.analytics_session(conn)
            _drop(conn, model)
            started = time.perf_counter()
            conn.execute(sa.text(f"create {model.materialized} {model.name} as {model.sql}"))
            if seconds is not None:
                seconds[model.name] = time.perf_counter() - started
            counts[model.name] = conn.execute(sa.text(f"select count(*) from {model.name}")).scalar_one()
    return counts


def _drop(conn: sa.Connection, model: Model) -> None:
    """Drop what the model built last time. A table where a view is declared is refused, not
    dropped: it holds rows nothing rebuilds (a warehouse from before the raw_* tables, whose
    stg_* tables are its staged data, must be upgraded first)."""
    inspector = sa.inspect(conn)
    if model.name in inspector.get_view_names():
        conn.execute(sa.text(f"drop view {model.name}"))
    elif inspector.has_table(model.name):
        if model.materialized == "view":
            raise ModelError(
                f"{model.name} is a table in this warehouse and the {model.layer} model declares a "
                f"view: upgrade the warehouse (its rows belong in the raw_* tables) before building"
            )
        conn.execute(sa.text(f"drop table {model.name}"))
