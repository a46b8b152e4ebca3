-- Person-times per site and month of one year, from the raw roster rows of files received by the
-- cutoff (the end of the watchdog's as-of day). A person-time is one person in one class, counted
-- in the first month it is reported (as int_roster_site_year counts it once per year), so the
-- months add up to the yearly count the evaluation uses. Parameters: year, cutoff.
with roster as (
    select r.*
    from raw_roster as r
    join submissions as s on s.submission_id = r.submission_id
    where s.received_at < :cutoff
      and cast(substr(r.period, 1, 4) as integer) = :year
),

person_times as (
    select
        site_code,
        class_id,
        person_key,
        min(period) as first_period,
        max(case when assessed then 1 else 0 end) as was_assessed,
        max(case when assessed and passed then 1 else 0 end) as has_passed
    from roster
    group by site_code, class_id, person_key
)

select
    site_code,
    first_period as period,
    count(*) as person_times,
    sum(was_assessed) as assessed,
    sum(has_passed) as passed
from person_times
group by site_code, first_period
order by site_code, first_period
