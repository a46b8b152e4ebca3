-- Current submissions per site and year: how many files the year's figures come from.
select
    site_code,
    cast(substr(period, 1, 4) as integer) as year,
    count(*) as submissions,
    sum(case when kind = 'roster' then 1 else 0 end) as roster_submissions
from submissions
where is_current = true
group by site_code, cast(substr(period, 1, 4) as integer)
