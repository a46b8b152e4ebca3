"""The SQL models' build order is derived from what each model reads, not kept by hand."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.settings import SQL_DIR
from yuhang_skills.indicators import layers


def _write(root, layer: str, name: str, sql: str) -> None:
    folder = root / layer
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.sql").write_text(sql, encoding="utf-8")


def test_what_a_model_reads_excludes_its_own_ctes_and_comments():
    sql = ("-- reads from nowhere_in_a_comment\n"
           "with a as (select * from stg_x), b as (select * from a join ref_y on 1 = 1)\n"
           "select * from b left join int_z as z on z.k = b.k")
    assert layers.reads(sql) == {"stg_x", "ref_y", "int_z"}


def test_a_model_is_built_after_the_models_it_reads_whatever_their_names(tmp_path):
    # alphabetically int_a would come first; it reads int_b, so int_b is built before it
    _write(tmp_path, "staging", "stg_numbers", "-- materialized: view\nselect 1 as n")
    _write(tmp_path, "intermediate", "int_a", "select n + 1 as n from int_b")
    _write(tmp_path, "intermediate", "int_b", "select n from stg_numbers")
    _write(tmp_path, "marts", "ind_total", "select sum(n) as n from int_a")
    order = [m.name for m in layers.build_order(layers.discover(tmp_path))]
    assert order == ["stg_numbers", "int_b", "int_a", "ind_total"]


def test_a_model_reading_a_later_layer_is_refused(tmp_path):
    _write(tmp_path, "intermediate", "int_early", "select n from ind_late")
    _write(tmp_path, "marts", "ind_late", "select 1 as n")
    with pytest.raises(layers.ModelError, match="intermediate model int_early reads ind_late of a later layer"):
        layers.build_order(layers.discover(tmp_path))


def test_a_cycle_is_an_error_naming_its_models(tmp_path):
    _write(tmp_path, "intermediate", "int_one", "select n from int_two")
    _write(tmp_path, "intermediate", "int_two", "select n from int_three")
    _write(tmp_path, "intermediate", "int_three", "select n from int_one")
    _write(tmp_path, "marts", "ind_fine", "select 1 as n")
    with pytest.raises(layers.ModelError, match="cycle: int_one, int_two, int_three, int_one"):
        layers.build_order(layers.discover(tmp_path))


def test_an_unknown_materialisation_is_refused(tmp_path):
    _write(tmp_path, "marts", "ind_odd", "-- materialized: snapshot\nselect 1 as n")
    with pytest.raises(layers.ModelError, match="snapshot"):
        layers.discover(tmp_path)


def test_materialisation_is_read_from_the_header(tmp_path, warehouse_url):
    _write(tmp_path, "staging", "stg_numbers", "-- materialized: view\n-- one row\nselect 1 as n")
    _write(tmp_path, "marts", "ind_numbers", "-- a table by default\nselect n from stg_numbers")
    engine = warehouse.make_engine(warehouse_url)
    assert layers.build_models(engine, tmp_path) == {"stg_numbers": 1, "ind_numbers": 1}
    seconds: dict[str, float] = {}
    assert layers.build_models(engine, tmp_path, seconds=seconds) == {"stg_numbers": 1, "ind_numbers": 1}  # rebuilt
    assert sorted(seconds) == ["ind_numbers", "stg_numbers"]  # each model's build time, for the benchmark
    inspector = sa.inspect(engine)
    assert "stg_numbers" in inspector.get_view_names()
    assert "ind_numbers" in inspector.get_table_names()
    engine.dispose()


def test_the_project_models_build_in_layers_with_staging_as_views():
    models = layers.discover(SQL_DIR)
    order = [m.name for m in layers.build_order(models)]
    assert {m.name for m in models.values() if m.layer == "staging"} == {
        "stg_roster", "stg_finance", "stg_survey", "stg_outcomes"}
    views = {m.name for m in models.values() if m.materialized == "view"}
    assert views == {"stg_roster", "stg_finance", "stg_survey", "stg_outcomes",
                     "quarantine_summary", "submissions_summary"}  # the summaries the reports show live
    for model in models.values():
        for name in model.reads & set(models):
            assert order.index(name) < order.index(model.name), (name, model.name)
    assert not any(name.startswith("raw_") for m in models.values() if m.layer != "staging" for name in m.reads)


def test_a_table_where_a_view_is_declared_is_refused_not_dropped(tmp_path, warehouse_url):
    _write(tmp_path, "staging", "stg_numbers", "-- materialized: view\nselect 1 as n")
    engine = warehouse.make_engine(warehouse_url)
    with engine.begin() as conn:  # staged rows in a table of the model's name, as before raw_*
        conn.execute(sa.text("create table stg_numbers (n integer)"))
        conn.execute(sa.text("insert into stg_numbers values (7)"))
    with pytest.raises(layers.ModelError, match="stg_numbers is a table in this warehouse"):
        layers.build_models(engine, tmp_path)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select n from stg_numbers")).scalar_one() == 7
    engine.dispose()
