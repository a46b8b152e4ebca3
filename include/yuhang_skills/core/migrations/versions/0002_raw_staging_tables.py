"""Staging as a layer: the intake's tables become raw_*, and reference targets carry exact fractions.

- ``stg_roster``, ``stg_finance``, ``stg_survey`` and ``stg_outcomes`` (the rows as the intake
  wrote them) are renamed ``raw_*``, rows untouched; ``stg_*`` are now the SQL models' views of
  the current submissions' rows (include/yuhang_skills/sql/staging), built by the indicators run.
  On PostgreSQL the primary keys follow the new names. The integrity checks' indexes
  ``ix_stg_*`` are dropped: the checks create them as ``ix_raw_*`` when they next run.
- ``ref_targets`` gains ``target_numerator`` and ``target_denominator`` (the target as a fraction
  of integers in lowest terms, so SQL decides "met" exactly on every database), computed from each
  row's target. The table is made again in the new shape with its rows (SQLite cannot add a NOT
  NULL column without a default).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa
from alembic import op

revision = "0002_raw_staging_tables"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

KINDS = ("roster", "finance", "survey", "outcomes")
CHECK_INDEXES = (
    "ix_{layer}_roster_person",
    "ix_{layer}_roster_class",
    "ix_{layer}_roster_end",
    "ix_{layer}_finance_invoice",
    "ix_{layer}_finance_site",
)


def _ref_targets(with_fraction: bool) -> None:
    bind = op.get_bind()
    rows = [
        dict(r._mapping)
        for r in bind.execute(sa.text("select programme, indicator, target, per_year from ref_targets"))
    ]
    columns: list[sa.Column] = [
        sa.Column("programme", sa.String(length=16), primary_key=True),
        sa.Column("indicator", sa.String(length=40), primary_key=True),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("per_year", sa.Boolean(), nullable=False),
    ]
    if with_fraction:
        columns += [
            sa.Column("target_numerator", sa.BigInteger(), nullable=False),
            sa.Column("target_denominator", sa.BigInteger(), nullable=False),
        ]
    op.drop_table("ref_targets")
    table = op.create_table("ref_targets", *columns)
    if with_fraction:
        for row in rows:
            fraction = Fraction(Decimal(str(row["target"])))
            row.update(target_numerator=fraction.numerator, target_denominator=fraction.denominator)
    if rows:
        op.bulk_insert(table, rows)


def _rename_staging(old: str, new: str) -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    views = set(sa.inspect(bind).get_view_names())
    for name in CHECK_INDEXES:
        op.execute(f"drop index if exists {name.format(layer=old)}")
    for kind in KINDS:
        if f"{new}_{kind}" in views:  # the staging models' view holds the name back (downgrade)
            op.execute(f"drop view {new}_{kind}")
        op.rename_table(f"{old}_{kind}", f"{new}_{kind}")
        if postgresql:
            op.execute(f"alter index if exists {old}_{kind}_pkey rename to {new}_{kind}_pkey")


def upgrade() -> None:
    _rename_staging("stg", "raw")
    _ref_targets(with_fraction=True)


def downgrade() -> None:
    _rename_staging("raw", "stg")
    _ref_targets(with_fraction=False)
