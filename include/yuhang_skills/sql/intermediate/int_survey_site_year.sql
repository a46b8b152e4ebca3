-- Satisfaction answers per site and year, by respondent type. Satisfied ratings are a policy
-- setting (ref_codes 'satisfied_ratings', default 非常满意 + 满意) over all valid answers.
with survey as (
    select * from stg_survey
),

satisfied as (
    select code from ref_codes where code_list = 'satisfied_ratings'
)

select
    s.site_code,
    cast(substr(s.period, 1, 4) as integer) as year,
    sum(case when s.respondent_type = 'worker' then 1 else 0 end) as worker_answers,
    sum(case when s.respondent_type = 'worker' and s.rating in (select code from satisfied)
        then 1 else 0 end) as worker_satisfied,
    sum(case when s.respondent_type = 'enterprise' then 1 else 0 end) as enterprise_answers,
    sum(case when s.respondent_type = 'enterprise' and s.rating in (select code from satisfied)
        then 1 else 0 end) as enterprise_satisfied,
    count(*) as survey_rows
from survey as s
group by s.site_code, cast(substr(s.period, 1, 4) as integer)
