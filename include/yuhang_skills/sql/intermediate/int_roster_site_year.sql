-- Training person-times per site, year and basis from the current roster submissions.
-- A person-time is one person in one class (unique person x class); the year is the year of
-- the submitted period. Key groups and key industries come from ref_codes (policy file).
-- Two rows per site-year: basis 'counted' leaves out the rows an integrity check excludes
-- (integrity_exclusions), basis 'reported' counts every staged row, so the evaluation can
-- show both. Both come from one pass over the roster: its rows are grouped into person-times
-- once and the person-times into site-years once.
with key_groups as (
    select code from ref_codes where code_list = 'key_groups'
),

key_industries as (
    select code from ref_codes where code_list = 'key_industries'
),

-- a person-time counts when any of its rows counts; its flags come from the rows that count
-- (counted) or from all its rows (reported)
person_times as (
    select
        r.site_code,
        cast(substr(r.period, 1, 4) as integer) as year,
        r.class_id,
        r.person_key,
        max(case when x.submission_id is null then 1 else 0 end) as counted,
        max(case when x.submission_id is null and r.person_group in (select code from key_groups)
            then 1 else 0 end) as is_key_group,
        max(case when x.submission_id is null and r.industry in (select code from key_industries)
            then 1 else 0 end) as is_key_industry,
        max(case when x.submission_id is null and r.assessed then 1 else 0 end) as was_assessed,
        max(case when x.submission_id is null and r.assessed and r.passed then 1 else 0 end) as has_passed,
        sum(case when x.submission_id is null then 1 else 0 end) as source_rows,
        max(case when r.person_group in (select code from key_groups) then 1 else 0 end) as is_key_group_reported,
        max(case when r.industry in (select code from key_industries) then 1 else 0 end) as is_key_industry_reported,
        max(case when r.assessed then 1 else 0 end) as was_assessed_reported,
        max(case when r.assessed and r.passed then 1 else 0 end) as has_passed_reported,
        count(*) as source_rows_reported
    from stg_roster as r
    left join integrity_exclusions as x
        on x.kind = 'roster' and x.submission_id = r.submission_id and x.source_row = r.source_row
    group by r.site_code, cast(substr(r.period, 1, 4) as integer), r.class_id, r.person_key
),

site_years as (
    select
        site_code,
        year,
        sum(counted) as person_times,
        sum(is_key_group) as key_group_person_times,
        sum(is_key_industry) as key_industry_person_times,
        sum(was_assessed) as assessed,
        sum(has_passed) as passed,
        sum(source_rows) as roster_rows,
        count(*) as person_times_reported,
        sum(is_key_group_reported) as key_group_person_times_reported,
        sum(is_key_industry_reported) as key_industry_person_times_reported,
        sum(was_assessed_reported) as assessed_reported,
        sum(has_passed_reported) as passed_reported,
        sum(source_rows_reported) as roster_rows_reported
    from person_times
    group by site_code, year
),

-- a trainee of a site-year counts when any of their person-times counts
trainees as (
    select site_code, year, person_key, max(counted) as counted
    from person_times
    group by site_code, year, person_key
),

trainees_site_year as (
    select site_code, year, sum(counted) as distinct_trainees, count(*) as distinct_trainees_reported
    from trainees
    group by site_code, year
)

select
    s.site_code,
    s.year,
    'counted' as basis,
    s.person_times,
    t.distinct_trainees,
    s.key_group_person_times,
    s.key_industry_person_times,
    s.assessed,
    s.passed,
    s.roster_rows
from site_years as s
inner join trainees_site_year as t on t.site_code = s.site_code and t.year = s.year

union all

select
    s.site_code,
    s.year,
    'reported' as basis,
    s.person_times_reported,
    t.distinct_trainees_reported,
    s.key_group_person_times_reported,
    s.key_industry_person_times_reported,
    s.assessed_reported,
    s.passed_reported,
    s.roster_rows_reported
from site_years as s
inner join trainees_site_year as t on t.site_code = s.site_code and t.year = s.year
