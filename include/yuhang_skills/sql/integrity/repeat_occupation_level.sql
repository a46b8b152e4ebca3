-- A person subsidised again for an occupation and level already trained (Zhejiang: once per
-- occupation and level), at one site or several. The earliest max_per_occupation_level
-- person-times are kept; the later ones would be excluded.
with params as (
    select value as max_per_occupation_level
    from ref_integrity_params
    where check_name = 'repeat_occupation_level' and parameter = 'max_per_occupation_level'
),

-- people with more roster rows than the limit: the only ones who can repeat
candidates as (
    select person_key
    from stg_roster
    group by person_key
    having count(*) > (select max_per_occupation_level from params)
),

person_times as (
    select person_key, site_code, class_id, occupation, level, min(start_date) as start_date
    from stg_roster as r
    where person_key in (select person_key from candidates)
        and not exists (  -- rows an earlier check (policy order) excluded do not count toward the limit
            select 1 from integrity_exclusions as x
            where x.kind = 'roster' and x.submission_id = r.submission_id and x.source_row = r.source_row
        )
    group by person_key, site_code, class_id, occupation, level
),

repeated as (
    select person_key, occupation, level, count(*) as times
    from person_times
    group by person_key, occupation, level
    having count(*) > (select max_per_occupation_level from params)
),

ranked as (
    select
        p.*,
        row_number() over (
            partition by p.person_key, p.occupation, p.level order by p.start_date, p.site_code, p.class_id
        ) as nth,
        t.times
    from person_times as p
    inner join repeated as t
        on t.person_key = p.person_key and t.occupation = p.occupation and t.level = p.level
)

select
    k.person_key || '|' || k.occupation || '|' || k.level as finding_key,
    c.year,
    'person' as subject_kind,
    k.person_key as subject,
    cast(k.times as numeric) as measure,
    l.max_per_occupation_level as threshold,
    'roster' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    case when k.nth > l.max_per_occupation_level then 1 else 0 end as would_exclude
from ranked as k
cross join params as l
inner join ref_calendar as c on c.day = k.start_date
inner join stg_roster as r
    on r.person_key = k.person_key and r.site_code = k.site_code and r.class_id = k.class_id
    and r.occupation = k.occupation and r.level = k.level
