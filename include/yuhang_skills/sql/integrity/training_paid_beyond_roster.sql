-- A site-year of a programme that pays training by the person-time (ref_codes
-- 'training_paid_beyond_roster_programmes') whose training payments ('training_paid_beyond_roster_categories', every
-- fund source) exceed max_yuan_per_person_time for each person-time its roster shows (all staged
-- rows, one person in one class once): paying for more training than was reported.
-- measure = yuan paid per person-time (every payment when the roster is empty).
with params as (
    select value as max_yuan_per_person_time
    from ref_integrity_params
    where check_name = 'training_paid_beyond_roster' and parameter = 'max_yuan_per_person_time'
),

training as (
    select site_code, cast(substr(period, 1, 4) as integer) as year, sum(amount_fen) as training_fen
    from stg_finance
    where category in (select code from ref_codes where code_list = 'training_paid_beyond_roster_categories')
        and site_code in (
            select site_code from ref_sites
            where programme in (select code from ref_codes where code_list = 'training_paid_beyond_roster_programmes')
        )
    group by site_code, cast(substr(period, 1, 4) as integer)
),

person_times as (
    select site_code, year, count(*) as person_times
    from (
        select distinct site_code, cast(substr(period, 1, 4) as integer) as year, class_id, person_key
        from stg_roster
    ) as distinct_person_times
    group by site_code, year
),

flagged as (
    select t.site_code, t.year, t.training_fen, coalesce(p.person_times, 0) as person_times
    from training as t
    cross join params as l
    left join person_times as p on p.site_code = t.site_code and p.year = t.year
    where t.training_fen > coalesce(p.person_times, 0) * l.max_yuan_per_person_time * 100
)

select
    f.site_code || '|' || cast(f.year as varchar(4)) as finding_key,
    f.year,
    'site' as subject_kind,
    f.site_code as subject,
    case when f.person_times > 0 then f.training_fen / 100.0 / f.person_times else f.training_fen / 100.0 end
        as measure,
    l.max_yuan_per_person_time as threshold,
    'finance' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    0 as would_exclude
from flagged as f
cross join params as l
inner join stg_finance as r
    on r.site_code = f.site_code
    and cast(substr(r.period, 1, 4) as integer) = f.year
    and r.category in (select code from ref_codes where code_list = 'training_paid_beyond_roster_categories')
