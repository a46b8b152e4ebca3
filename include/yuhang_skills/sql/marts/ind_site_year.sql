-- Yearly indicators per site: every active site-year of the implementation period, whether or
-- not it submitted anything, with its targets (pro-rated by target_months / 12 in the first
-- year, see ref_site_years), whether each is met, the shortfall, and the rows it came from.
-- Rates are left as numerator and denominator; the evaluation computes them exactly. The
-- *_reported columns are the same figures before integrity exclusions.
with site_years as (
    select * from ref_site_years
),

targets as (
    select * from ref_targets
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
        pt.target * sy.target_months / 12.0 as person_times_target,
        pr.target as pass_rate_target,
        sr.target as satisfaction_rate_target,
        coalesce(r.roster_rows, 0) as roster_rows,
        coalesce(f.finance_rows, 0) as finance_rows,
        coalesce(s.survey_rows, 0) as survey_rows,
        coalesce(o.outcome_rows, 0) as outcome_rows,
        coalesce(fl.submissions, 0) as submissions,
        -- before integrity exclusions (integrity_exclusions): what the sites reported
        coalesce(r.person_times_reported, 0) as person_times_reported,
        coalesce(r.key_group_person_times_reported, 0) as key_group_person_times_reported,
        coalesce(r.key_industry_person_times_reported, 0) as key_industry_person_times_reported,
        coalesce(r.assessed_reported, 0) as assessed_reported,
        coalesce(r.passed_reported, 0) as passed_reported,
        coalesce(r.roster_rows_reported, 0) as roster_rows_reported,
        coalesce(f.provincial_eligible_fen_reported, 0) as provincial_eligible_fen_reported,
        coalesce(f.spend_total_fen_reported, 0) as spend_total_fen_reported,
        coalesce(f.finance_rows_reported, 0) as finance_rows_reported
    from site_years as sy
    left join roster as r on r.site_code = sy.site_code and r.year = sy.year
    left join finance as f on f.site_code = sy.site_code and f.year = sy.year
    left join survey as s on s.site_code = sy.site_code and s.year = sy.year
    left join outcomes as o on o.site_code = sy.site_code and o.year = sy.year
    left join files as fl on fl.site_code = sy.site_code and fl.year = sy.year
    left join targets as pt on pt.programme = sy.programme and pt.indicator = 'person_times'
    left join targets as pr on pr.programme = sy.programme and pr.indicator = 'pass_rate'
    left join targets as sr on sr.programme = sy.programme and sr.indicator = 'satisfaction_rate'
)

select
    joined.*,
    case when person_times > 0 then 1.0 * key_group_person_times / person_times end as key_group_share,
    case when person_times > 0 then 1.0 * key_industry_person_times / person_times end as key_industry_share,
    case when assessed > 0 then 1.0 * passed / assessed end as pass_rate,
    case when worker_answers > 0 then 1.0 * worker_satisfied / worker_answers end as worker_satisfaction_rate,
    case when enterprise_answers > 0 then 1.0 * enterprise_satisfied / enterprise_answers end
        as enterprise_satisfaction_rate,
    case when person_times_target is null then null
        when person_times >= person_times_target then 1 else 0 end as person_times_met,
    case when person_times_target is null then null
        when person_times >= person_times_target then 0
        else person_times_target - person_times end as person_times_shortfall,
    case when pass_rate_target is null then null
        when assessed > 0 and 1.0 * passed / assessed >= pass_rate_target then 1 else 0 end as pass_rate_met,
    case when pass_rate_target is null then null
        when assessed = 0 then pass_rate_target
        when 1.0 * passed / assessed >= pass_rate_target then 0
        else pass_rate_target - 1.0 * passed / assessed end as pass_rate_shortfall,
    case when satisfaction_rate_target is null then null
        when worker_answers + enterprise_answers = 0 then 0
        when 1.0 * (worker_satisfied + enterprise_satisfied) / (worker_answers + enterprise_answers)
            >= satisfaction_rate_target then 1 else 0 end as satisfaction_met
from joined
