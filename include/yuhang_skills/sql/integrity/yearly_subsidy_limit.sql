-- A person subsidised more than max_per_year times in one calendar year (the year the class
-- starts), at one site or several. A person-time is one person in one class; the earliest
-- max_per_year person-times of the year are kept and the later ones would be excluded.
with params as (
    select value as max_per_year
    from ref_integrity_params
    where check_name = 'yearly_subsidy_limit' and parameter = 'max_per_year'
),

-- people with more roster rows than the limit: the only ones who can exceed it in a year
candidates as (
    select person_key
    from stg_roster
    group by person_key
    having count(*) > (select max_per_year from params)
),

-- their rows, read once for the person-times and the evidence: with no candidate the roster is
-- not read again (PostgreSQL otherwise hashed all of it for the evidence before it found no
-- person-time)
candidate_rows as (
    select submission_id, source_row, site_code, period, class_id, person_key, start_date
    from stg_roster
    where person_key in (select person_key from candidates)
),

person_times as (
    select person_key, site_code, class_id, min(start_date) as start_date
    from candidate_rows as r
    where not exists (  -- rows an earlier check (policy order) excluded do not count toward the limit
            select 1 from integrity_exclusions as x
            where x.kind = 'roster' and x.submission_id = r.submission_id and x.source_row = r.source_row
        )
    group by person_key, site_code, class_id
),

ranked as (
    select
        p.person_key,
        p.site_code,
        p.class_id,
        c.year,
        row_number() over (
            partition by p.person_key, c.year order by p.start_date, p.site_code, p.class_id
        ) as nth,
        count(*) over (partition by p.person_key, c.year) as in_year
    from person_times as p
    inner join ref_calendar as c on c.day = p.start_date
)

select
    k.person_key || '|' || cast(k.year as varchar(4)) as finding_key,
    k.year,
    'person' as subject_kind,
    k.person_key as subject,
    cast(k.in_year as numeric) as measure,
    l.max_per_year as threshold,
    'roster' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    case when k.nth > l.max_per_year then 1 else 0 end as would_exclude
from ranked as k
cross join params as l
inner join candidate_rows as r
    on r.person_key = k.person_key and r.site_code = k.site_code and r.class_id = k.class_id
where k.in_year > l.max_per_year
