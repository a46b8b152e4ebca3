-- A class of at least min_class_size trainees in which every trainee was assessed, passed and
-- gave the same satisfaction answer: answers real classes rarely give. measure = trainees.
with params as (
    select value as min_class_size
    from ref_integrity_params
    where check_name = 'uniform_class' and parameter = 'min_class_size'
),

classes as (
    select
        site_code,
        class_id,
        min(start_date) as start_date,
        count(*) as trainees,
        sum(case when assessed and passed then 1 else 0 end) as passed,
        count(satisfaction) as answered,
        count(distinct satisfaction) as different_answers
    from stg_roster
    group by site_code, class_id
)

select
    k.site_code || '|' || k.class_id as finding_key,
    c.year,
    'class' as subject_kind,
    k.class_id as subject,
    cast(k.trainees as numeric) as measure,
    p.min_class_size as threshold,
    'roster' as kind,
    r.submission_id,
    r.source_row,
    r.site_code as row_site,
    r.period as row_period,
    0 as would_exclude
from classes as k
cross join params as p
inner join ref_calendar as c on c.day = k.start_date
inner join stg_roster as r on r.site_code = k.site_code and r.class_id = k.class_id
where k.trainees >= p.min_class_size
    and k.passed = k.trainees
    and k.answered = k.trainees
    and k.different_answers = 1
