-- materialized: view
-- Quarantine by site, kind, column and reason: files, distinct rows (a rejected file's
-- whole-file reason counts no row), rows still in the current version of their file, and the
-- first three distinct example values in file and row order (masked where personal). A view:
-- the report shows the quarantine as it is when the report is built.
with rows_read as (
    select
        q.site_code,
        q.kind,
        q.column_name,
        q.reason_zh,
        q.reason_en,
        q.submission_id,
        q.source_row,
        q.value,
        case when q.value is not null and q.value <> '' then 1 else 0 end as has_value,
        case when s.is_current then 1 else 0 end as is_current,
        row_number() over (
            order by q.submission_id, coalesce(q.source_row, 0), q.column_name, q.quarantine_id
        ) as position
    from quarantine as q
    left join submissions as s on s.submission_id = q.submission_id
),

-- where each distinct value first appears in its group
first_seen as (
    select
        rows_read.*,
        min(position) over (
            partition by site_code, kind, column_name, reason_zh, reason_en, has_value, value
        ) as first_position
    from rows_read
),

-- the distinct values of a group numbered in the order they first appear
numbered as (
    select
        first_seen.*,
        dense_rank() over (
            partition by site_code, kind, column_name, reason_zh, reason_en, has_value order by first_position
        ) as example
    from first_seen
)

select
    site_code,
    kind,
    column_name,
    reason_zh,
    reason_en,
    count(distinct submission_id) as files,
    count(distinct case when source_row is not null
        then submission_id || ':' || cast(source_row as varchar(12)) end) as rows,
    count(distinct case when source_row is not null and is_current = 1
        then submission_id || ':' || cast(source_row as varchar(12)) end) as current_rows,
    max(case when has_value = 1 and example = 1 then value end) as example_1,
    max(case when has_value = 1 and example = 2 then value end) as example_2,
    max(case when has_value = 1 and example = 3 then value end) as example_3
from numbered
group by site_code, kind, column_name, reason_zh, reason_en
