-- A site of a programme that trains all year round (ref_codes 'certificate_burst_programmes';
-- a village runs a few classes a year, so its passes come in bursts by nature) passing far more
-- trainees within window_days days (by class end date) than it usually does: more than multiple_of_usual times its site-year's average for that many days (passes of
-- the year over the days of its active months) and at least min_passed. One finding per
-- site-year, for its busiest such window (the earliest if tied); its evidence the passed rows.
with params as (
    select
        max(case when parameter = 'window_days' then value end) as window_days,
        max(case when parameter = 'multiple_of_usual' then value end) as multiple_of_usual,
        max(case when parameter = 'min_passed' then value end) as min_passed
    from ref_integrity_params
    where check_name = 'certificate_burst'
),

daily as (
    select r.site_code, c.year, c.day_number, count(*) as passed
    from stg_roster as r
    inner join ref_calendar as c on c.day = r.end_date
    where r.assessed and r.passed
        and r.site_code in (
            select site_code from ref_sites
            where programme in (select code from ref_codes where code_list = 'certificate_burst_programmes')
        )
    group by r.site_code, c.year, c.day_number
),

usual as (
    select d.site_code, d.year, sum(d.passed) * 12.0 / (365.0 * sy.months_active) as per_day
    from daily as d
    inner join ref_site_years as sy on sy.site_code = d.site_code and sy.year = d.year
    group by d.site_code, d.year, sy.months_active
),

windows as (
    select a.site_code, a.year, a.day_number as first_day, sum(b.passed) as passed_in_window
    from daily as a
    cross join params as p
    inner join daily as b
        on b.site_code = a.site_code
        and b.day_number >= a.day_number
        and b.day_number < a.day_number + p.window_days
    group by a.site_code, a.year, a.day_number
),

flagged as (
    select
        w.*,
        u.per_day * p.window_days as usual_in_window,
        row_number() over (
            partition by w.site_code, w.year order by w.passed_in_window desc, w.first_day
        ) as rank_in_year
    from windows as w
    cross join params as p
    inner join usual as u on u.site_code = w.site_code and u.year = w.year
    where w.passed_in_window > p.multiple_of_usual * u.per_day * p.window_days
        and w.passed_in_window >= p.min_passed
)

select
    f.site_code || '|' || cast(f.year as varchar(4)) as finding_key,
    f.year,
    'site' as subject_kind,
    f.site_code as subject,
    cast(f.passed_in_window as numeric) as measure,
    cast(f.usual_in_window as numeric) as threshold,
    'roster' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    0 as would_exclude
-- the flagged windows drive the evidence (joined in this order, which SQLite keeps for a cross
-- join): the few passed rows of a flagged window through the site and end date index, never a
-- scan of the whole roster
from flagged as f
cross join params as p
cross join ref_calendar as c
cross join stg_roster as r
where f.rank_in_year = 1
    and c.day_number >= f.first_day and c.day_number < f.first_day + p.window_days
    and r.site_code = f.site_code and r.end_date = c.day
    and r.assessed and r.passed
