-- Spending per site, year and basis (integer fen), by fund source, with provincial money split
-- into eligible and ineligible uses (eligible categories come from the policy via ref_codes).
-- Sums are cast back to bigint: PostgreSQL widens sum(bigint) to numeric. Two rows per
-- site-year: basis 'counted' leaves out the payments an integrity check excludes
-- (integrity_exclusions), basis 'reported' counts every staged payment.
with bases as (
    select 'counted' as basis
    union all
    select 'reported' as basis
),

finance as (
    select
        f.*,
        b.basis,
        case when b.basis = 'reported' or x.submission_id is null then 1 else 0 end as counted
    from stg_finance as f
    cross join bases as b
    left join integrity_exclusions as x
        on x.kind = 'finance' and x.submission_id = f.submission_id and x.source_row = f.source_row
),

eligible as (
    select code from ref_codes where code_list = 'eligible_provincial_categories'
)

select
    f.site_code,
    cast(substr(f.period, 1, 4) as integer) as year,
    f.basis,
    cast(sum(f.amount_fen * f.counted) as bigint) as spend_total_fen,
    cast(sum(case when f.fund_source = 'provincial' then f.amount_fen * f.counted else 0 end) as bigint) as spend_provincial_fen,
    cast(sum(case when f.fund_source = 'district' then f.amount_fen * f.counted else 0 end) as bigint) as spend_district_fen,
    cast(sum(case when f.fund_source not in ('provincial', 'district') then f.amount_fen * f.counted else 0 end) as bigint) as spend_other_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category in (select code from eligible)
        then f.amount_fen * f.counted else 0 end) as bigint) as provincial_eligible_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category not in (select code from eligible)
        then f.amount_fen * f.counted else 0 end) as bigint) as provincial_ineligible_fen,
    cast(sum(case when f.category = 'equipment' then f.amount_fen * f.counted else 0 end) as bigint) as equipment_fen,
    sum(f.counted) as finance_rows
from finance as f
group by f.site_code, cast(substr(f.period, 1, 4) as integer), f.basis
