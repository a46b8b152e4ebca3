-- Training person-times per site, year and basis from the current roster submissions.
-- A person-time is one person in one class (unique person x class); the year is the year of
-- the submitted period. Key groups and key industries come from ref_codes (policy file).
-- Two rows per site-year: basis 'counted' leaves out the rows an integrity check excludes
-- (integrity_exclusions), basis 'reported' counts every staged row, so the evaluation can
-- show both.
with roster as (
    select
        r.*,
        case when x.submission_id is null then 1 else 0 end as counted
    from stg_roster as r
    left join integrity_exclusions as x
        on x.kind = 'roster' and x.submission_id = r.submission_id and x.source_row = r.source_row
),

key_groups as (
    select code from ref_codes where code_list = 'key_groups'
),

key_industries as (
    select code from ref_codes where code_list = 'key_industries'
),

rows_flagged as (
    select
        r.site_code,
        cast(substr(r.period, 1, 4) as integer) as year,
        r.class_id,
        r.person_key,
        r.submission_id,
        r.counted,
        case when r.person_group in (select code from key_groups) then 1 else 0 end as is_key_group,
        case when r.industry in (select code from key_industries) then 1 else 0 end as is_key_industry,
        case when r.assessed then 1 else 0 end as was_assessed,
        case when r.assessed and r.passed then 1 else 0 end as has_passed
    from roster as r
),

-- a person-time counts when any of its rows counts; its flags come from the rows that count
-- (counted) or from all its rows (reported)
person_times as (
    select
        site_code,
        year,
        class_id,
        person_key,
        max(counted) as counted,
        max(is_key_group * counted) as is_key_group,
        max(is_key_industry * counted) as is_key_industry,
        max(was_assessed * counted) as was_assessed,
        max(has_passed * counted) as has_passed,
        sum(counted) as source_rows,
        max(is_key_group) as is_key_group_reported,
        max(is_key_industry) as is_key_industry_reported,
        max(was_assessed) as was_assessed_reported,
        max(has_passed) as has_passed_reported,
        count(*) as source_rows_reported
    from rows_flagged
    group by site_code, year, class_id, person_key
)

select
    site_code,
    year,
    'counted' as basis,
    sum(counted) as person_times,
    count(distinct case when counted = 1 then person_key end) as distinct_trainees,
    sum(is_key_group) as key_group_person_times,
    sum(is_key_industry) as key_industry_person_times,
    sum(was_assessed) as assessed,
    sum(has_passed) as passed,
    sum(source_rows) as roster_rows
from person_times
group by site_code, year

union all

select
    site_code,
    year,
    'reported' as basis,
    count(*) as person_times,
    count(distinct person_key) as distinct_trainees,
    sum(is_key_group_reported) as key_group_person_times,
    sum(is_key_industry_reported) as key_industry_person_times,
    sum(was_assessed_reported) as assessed,
    sum(has_passed_reported) as passed,
    sum(source_rows_reported) as roster_rows
from person_times
group by site_code, year
