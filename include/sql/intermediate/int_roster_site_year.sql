-- Training person-times per site and year from the current roster submissions.
-- A person-time is one person in one class (unique person x class); the year is the year of
-- the submitted period. Key groups and key industries come from ref_codes (policy file).
with roster as (
    select * from stg_roster
),

key_groups as (
    select code from ref_codes where code_list = 'key_groups'
),

key_industries as (
    select code from ref_codes where code_list = 'key_industries'
),

person_times as (
    select
        r.site_code,
        cast(substr(r.period, 1, 4) as integer) as year,
        r.class_id,
        r.person_key,
        max(case when r.person_group in (select code from key_groups) then 1 else 0 end) as is_key_group,
        max(case when r.industry in (select code from key_industries) then 1 else 0 end) as is_key_industry,
        max(case when r.assessed then 1 else 0 end) as was_assessed,
        max(case when r.assessed and r.passed then 1 else 0 end) as has_passed,
        count(*) as source_rows,
        count(distinct r.submission_id) as submissions
    from roster as r
    group by r.site_code, cast(substr(r.period, 1, 4) as integer), r.class_id, r.person_key
)

select
    site_code,
    year,
    count(*) as person_times,
    count(distinct person_key) as distinct_trainees,
    sum(is_key_group) as key_group_person_times,
    sum(is_key_industry) as key_industry_person_times,
    sum(was_assessed) as assessed,
    sum(has_passed) as passed,
    sum(source_rows) as roster_rows
from person_times
group by site_code, year
