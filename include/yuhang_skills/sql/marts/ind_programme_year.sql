-- Programme and district roll-ups per year and basis ('all' is the district), with budget
-- execution: provincial money spent on eligible uses against the provincial money received
-- (ref_provincial_received, from the policy's tranches), and the person-time targets of the
-- site-years (int_site_year_targets).
with sites as (
    select * from ind_site_year
),

person_time_targets as (
    select * from int_site_year_targets where indicator = 'person_times'
),

measured as (
    select
        sites.*,
        pt.target as person_times_target,
        pt.met as person_times_met
    from sites
    left join person_time_targets as pt
        on pt.site_code = sites.site_code and pt.year = sites.year and pt.basis = sites.basis
),

-- every site-year counted twice: once for its programme, once for the district
rollups as (
    select programme as rollup, measured.* from measured
    union all
    select 'all' as rollup, measured.* from measured
),

totals as (
    select
        rollup as programme,
        year,
        basis,
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
        cast(sum(spend_provincial_fen) as bigint) as spend_provincial_fen,
        cast(sum(provincial_eligible_fen) as bigint) as provincial_eligible_fen,
        cast(sum(provincial_ineligible_fen) as bigint) as provincial_ineligible_fen,
        cast(sum(spend_total_fen) as bigint) as spend_total_fen
    from rollups
    group by rollup, year, basis
)

select
    t.*,
    rr.received_fen as provincial_received_fen,
    case when t.programme = 'all' and rr.received_fen > 0
        then 1.0 * t.provincial_eligible_fen / rr.received_fen end as budget_execution_rate
from totals as t
left join ref_provincial_received as rr on rr.year = t.year
