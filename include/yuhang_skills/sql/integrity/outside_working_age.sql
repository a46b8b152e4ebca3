-- A trainee outside legal working age on the class start date: younger than the minimum age,
-- or on or after the statutory retirement date (ref_retirement: the 2025 reform with the
-- policy's female base). Intake accepts a row within its grace days of a limit; this check
-- still reports it, and the row would be excluded. measure = age in completed years.
with params as (
    select value as minimum_age_years
    from ref_integrity_params
    where check_name = 'outside_working_age' and parameter = 'minimum_age_years'
)

select
    r.person_key || '|' || r.site_code || '|' || r.class_id as finding_key,
    c.year,
    'person' as subject_kind,
    r.person_key as subject,
    cast(r.age_on_start as numeric) as measure,
    p.minimum_age_years as threshold,
    'roster' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    1 as would_exclude
from stg_roster as r
cross join params as p
inner join ref_calendar as c on c.day = r.start_date
left join ref_retirement as t on t.sex = r.sex and t.birth_date = r.birth_date
where r.age_on_start < p.minimum_age_years
    or r.start_date >= t.retirement_date
