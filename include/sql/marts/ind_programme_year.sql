-- Programme and district roll-ups per year ('all' is the district), with budget execution:
-- provincial money spent on eligible uses against the provincial money received
-- (ref_provincial_received, from the policy's tranches).
with sites as (
    select * from ind_site_year
),

by_programme as (
    select
        programme,
        year,
        count(*) as site_years,
        sum(person_times) as person_times,
        sum(person_times_target) as person_times_target,
        sum(case when person_times_met = 1 then 1 else 0 end) as person_times_met_site_years,
        sum(assessed) as assessed,
        sum(passed) as passed,
        sum(worker_answers) as worker_answers,
        sum(worker_satisfied) as worker_satisfied,
        sum(enterprise_answers) as enterprise_answers,
        sum(enterprise_satisfied) as enterprise_satisfied,
        sum(key_group_person_times) as key_group_person_times,
        sum(key_industry_person_times) as key_industry_person_times,
        sum(spend_provincial_fen) as spend_provincial_fen,
        sum(provincial_eligible_fen) as provincial_eligible_fen,
        sum(provincial_ineligible_fen) as provincial_ineligible_fen,
        sum(spend_total_fen) as spend_total_fen
    from sites
    group by programme, year
),

district as (
    select
        'all' as programme,
        year,
        sum(site_years) as site_years,
        sum(person_times) as person_times,
        sum(person_times_target) as person_times_target,
        sum(person_times_met_site_years) as person_times_met_site_years,
        sum(assessed) as assessed,
        sum(passed) as passed,
        sum(worker_answers) as worker_answers,
        sum(worker_satisfied) as worker_satisfied,
        sum(enterprise_answers) as enterprise_answers,
        sum(enterprise_satisfied) as enterprise_satisfied,
        sum(key_group_person_times) as key_group_person_times,
        sum(key_industry_person_times) as key_industry_person_times,
        sum(spend_provincial_fen) as spend_provincial_fen,
        sum(provincial_eligible_fen) as provincial_eligible_fen,
        sum(provincial_ineligible_fen) as provincial_ineligible_fen,
        sum(spend_total_fen) as spend_total_fen
    from by_programme
    group by year
),

unioned as (
    select * from by_programme
    union all
    select * from district
)

select
    u.*,
    rr.received_fen as provincial_received_fen,
    case when u.programme = 'all' and rr.received_fen > 0
        then 1.0 * u.provincial_eligible_fen / rr.received_fen end as budget_execution_rate
from unioned as u
left join ref_provincial_received as rr on rr.year = u.year
