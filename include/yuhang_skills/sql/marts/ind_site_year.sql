-- Yearly indicators per site and basis: every active site-year of the implementation period,
-- whether or not it submitted anything, twice: basis 'counted' without the rows an integrity
-- check excludes (integrity_exclusions), basis 'reported' with every staged row (what the sites
-- reported). Survey answers and village outcomes are the same on both. Rates are left as
-- numerator and denominator; the evaluation computes them exactly. Targets and whether they are
-- met are in int_site_year_targets.
with site_years as (
    select * from ref_site_years
),

bases as (
    select 'counted' as basis
    union all
    select 'reported' as basis
),

roster as (
    select * from int_roster_site_year
),

finance as (
    select * from int_finance_site_year
),

survey as (
    select * from int_survey_site_year
),

outcomes as (
    select * from int_outcomes_site_year
),

files as (
    select * from int_submissions_site_year
),

joined as (
    select
        sy.site_code,
        sy.programme,
        sy.year,
        b.basis,
        sy.months_active,
        sy.target_months,
        coalesce(r.person_times, 0) as person_times,
        coalesce(r.distinct_trainees, 0) as distinct_trainees,
        coalesce(r.key_group_person_times, 0) as key_group_person_times,
        coalesce(r.key_industry_person_times, 0) as key_industry_person_times,
        coalesce(r.assessed, 0) as assessed,
        coalesce(r.passed, 0) as passed,
        coalesce(s.worker_answers, 0) as worker_answers,
        coalesce(s.worker_satisfied, 0) as worker_satisfied,
        coalesce(s.enterprise_answers, 0) as enterprise_answers,
        coalesce(s.enterprise_satisfied, 0) as enterprise_satisfied,
        coalesce(f.spend_total_fen, 0) as spend_total_fen,
        coalesce(f.spend_provincial_fen, 0) as spend_provincial_fen,
        coalesce(f.spend_district_fen, 0) as spend_district_fen,
        coalesce(f.spend_other_fen, 0) as spend_other_fen,
        coalesce(f.provincial_eligible_fen, 0) as provincial_eligible_fen,
        coalesce(f.provincial_ineligible_fen, 0) as provincial_ineligible_fen,
        coalesce(f.equipment_fen, 0) as equipment_fen,
        o.low_income_households,
        o.households_with_skill,
        o.outcome_trainees,
        o.avg_income_gain_fen,
        case when o.site_code is null then 0 else 1 end as outcomes_reported,
        coalesce(r.roster_rows, 0) as roster_rows,
        coalesce(f.finance_rows, 0) as finance_rows,
        coalesce(s.survey_rows, 0) as survey_rows,
        coalesce(o.outcome_rows, 0) as outcome_rows,
        coalesce(fl.submissions, 0) as submissions
    from site_years as sy
    cross join bases as b
    left join roster as r on r.site_code = sy.site_code and r.year = sy.year and r.basis = b.basis
    left join finance as f on f.site_code = sy.site_code and f.year = sy.year and f.basis = b.basis
    left join survey as s on s.site_code = sy.site_code and s.year = sy.year
    left join outcomes as o on o.site_code = sy.site_code and o.year = sy.year
    left join files as fl on fl.site_code = sy.site_code and fl.year = sy.year
)

select
    joined.*,
    case when person_times > 0 then 1.0 * key_group_person_times / person_times end as key_group_share,
    case when person_times > 0 then 1.0 * key_industry_person_times / person_times end as key_industry_share,
    case when assessed > 0 then 1.0 * passed / assessed end as pass_rate,
    case when worker_answers > 0 then 1.0 * worker_satisfied / worker_answers end as worker_satisfaction_rate,
    case when enterprise_answers > 0 then 1.0 * enterprise_satisfied / enterprise_answers end
        as enterprise_satisfaction_rate
from joined
