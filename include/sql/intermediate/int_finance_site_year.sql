-- Spending per site and year (integer fen), by fund source, with provincial money split into
-- eligible and ineligible uses (eligible categories come from the policy via ref_codes).
-- Sums are cast back to bigint: PostgreSQL widens sum(bigint) to numeric.
with finance as (
    select * from stg_finance
),

eligible as (
    select code from ref_codes where code_list = 'eligible_provincial_categories'
)

select
    f.site_code,
    cast(substr(f.period, 1, 4) as integer) as year,
    cast(sum(f.amount_fen) as bigint) as spend_total_fen,
    cast(sum(case when f.fund_source = 'provincial' then f.amount_fen else 0 end) as bigint) as spend_provincial_fen,
    cast(sum(case when f.fund_source = 'district' then f.amount_fen else 0 end) as bigint) as spend_district_fen,
    cast(sum(case when f.fund_source not in ('provincial', 'district') then f.amount_fen else 0 end) as bigint) as spend_other_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category in (select code from eligible)
        then f.amount_fen else 0 end) as bigint) as provincial_eligible_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category not in (select code from eligible)
        then f.amount_fen else 0 end) as bigint) as provincial_ineligible_fen,
    cast(sum(case when f.category = 'equipment' then f.amount_fen else 0 end) as bigint) as equipment_fen,
    count(*) as finance_rows
from finance as f
group by f.site_code, cast(substr(f.period, 1, 4) as integer)
