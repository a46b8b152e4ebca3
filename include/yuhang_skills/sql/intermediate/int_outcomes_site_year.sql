-- Village outcomes per site and year ("一户一技" coverage and income gain).
with outcomes as (
    select * from stg_outcomes
)

select
    site_code,
    year,
    sum(low_income_households) as low_income_households,
    sum(households_with_skill) as households_with_skill,
    sum(trainees) as outcome_trainees,
    max(avg_income_gain_fen) as avg_income_gain_fen,
    count(*) as outcome_rows
from outcomes
group by site_code, year
