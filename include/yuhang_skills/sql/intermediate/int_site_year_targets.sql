-- Every yearly target of the policy for every active site-year of its programme, on both bases
-- ('counted': after integrity exclusions, 'reported': every staged row): the target, the actual
-- as numerator / denominator, the attainment min(1, actual / target), whether it is met and the
-- shortfall. The one place a target is pro-rated: a per-year target (ref_targets.per_year) is
-- scaled by target_months / 12 (ref_site_years: the months active in the first year when the
-- policy pro-rates, else 12).
--
-- Targets are kept as an exact fraction target_numerator / target_denominator of integers
-- (ref_targets holds each policy target as one), so "met" is decided in integers on every
-- database: numerator x target_denominator >= target_numerator x denominator. The evaluation
-- scores from the same fractions exactly; target, actual, attainment and shortfall are their
-- decimal values for reading. An actual with a zero denominator (no assessed trainee, no survey
-- answer) is null and attains nothing.
with site_years as (
    select * from ref_site_years
),

targets as (
    select * from ref_targets
),

bases as (
    select 'counted' as basis
    union all
    select 'reported' as basis
),

roster as (
    select * from int_roster_site_year
),

survey as (
    select * from int_survey_site_year
),

files as (
    select * from int_submissions_site_year
),

measured as (
    select
        sy.site_code,
        sy.programme,
        sy.year,
        t.indicator,
        b.basis,
        t.per_year,
        case when t.per_year then t.target_numerator * sy.target_months else t.target_numerator end
            as target_numerator,
        case when t.per_year then t.target_denominator * 12 else t.target_denominator end as target_denominator,
        case t.indicator
            when 'person_times' then coalesce(r.person_times, 0)
            when 'pass_rate' then coalesce(r.passed, 0)
            when 'satisfaction_rate' then coalesce(s.worker_satisfied + s.enterprise_satisfied, 0)
        end as numerator,
        case t.indicator
            when 'person_times' then 1
            when 'pass_rate' then coalesce(r.assessed, 0)
            when 'satisfaction_rate' then coalesce(s.worker_answers + s.enterprise_answers, 0)
        end as denominator,
        case when t.indicator = 'satisfaction_rate' then coalesce(s.survey_rows, 0)
            else coalesce(r.roster_rows, 0) end as source_rows,
        coalesce(fl.submissions, 0) as submissions
    from site_years as sy
    join targets as t on t.programme = sy.programme
    cross join bases as b
    left join roster as r on r.site_code = sy.site_code and r.year = sy.year and r.basis = b.basis
    left join survey as s on s.site_code = sy.site_code and s.year = sy.year
    left join files as fl on fl.site_code = sy.site_code and fl.year = sy.year
),

valued as (
    select
        measured.*,
        1.0 * target_numerator / target_denominator as target,
        case when denominator > 0 then 1.0 * numerator / denominator end as actual,
        case
            when denominator = 0 then 0
            when target_numerator <= 0 then 1
            when numerator * target_denominator >= target_numerator * denominator then 1
            else 0
        end as met
    from measured
)

select
    site_code,
    programme,
    year,
    indicator,
    basis,
    per_year,
    target_numerator,
    target_denominator,
    target,
    numerator,
    denominator,
    actual,
    case
        when actual is null then 0
        when target <= 0 or met = 1 then 1
        else actual / target
    end as attainment,
    met,
    case when met = 1 or target <= coalesce(actual, 0) then 0 else target - coalesce(actual, 0) end as shortfall,
    source_rows,
    submissions
from valued
