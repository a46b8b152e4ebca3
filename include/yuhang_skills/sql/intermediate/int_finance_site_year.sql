-- Spending per site and year (integer fen), by fund source, with provincial money split into
-- eligible and ineligible uses (eligible categories come from the policy via ref_codes).
-- Sums are cast back to bigint: PostgreSQL widens sum(bigint) to numeric. Payments an integrity
-- check excludes (integrity_exclusions) are not counted; the *_reported columns count them.
with finance as (
    select
        f.*,
        case when x.submission_id is null then 1 else 0 end as counted
    from stg_finance as f
    left join integrity_exclusions as x
        on x.kind = 'finance' and x.submission_id = f.submission_id and x.source_row = f.source_row
),

eligible as (
    select code from ref_codes where code_list = 'eligible_provincial_categories'
)

select
    f.site_code,
    cast(substr(f.period, 1, 4) as integer) as year,
    cast(sum(f.amount_fen * f.counted) as bigint) as spend_total_fen,
    cast(sum(case when f.fund_source = 'provincial' then f.amount_fen * f.counted else 0 end) as bigint) as spend_provincial_fen,
    cast(sum(case when f.fund_source = 'district' then f.amount_fen * f.counted else 0 end) as bigint) as spend_district_fen,
    cast(sum(case when f.fund_source not in ('provincial', 'district') then f.amount_fen * f.counted else 0 end) as bigint) as spend_other_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category in (select code from eligible)
        then f.amount_fen * f.counted else 0 end) as bigint) as provincial_eligible_fen,
    cast(sum(case when f.fund_source = 'provincial' and f.category not in (select code from eligible)
        then f.amount_fen * f.counted else 0 end) as bigint) as provincial_ineligible_fen,
    cast(sum(case when f.category = 'equipment' then f.amount_fen * f.counted else 0 end) as bigint) as equipment_fen,
    sum(f.counted) as finance_rows,
    cast(sum(f.amount_fen) as bigint) as spend_total_fen_reported,
    cast(sum(case when f.fund_source = 'provincial' and f.category in (select code from eligible)
        then f.amount_fen else 0 end) as bigint) as provincial_eligible_fen_reported,
    count(*) as finance_rows_reported
from finance as f
group by f.site_code, cast(substr(f.period, 1, 4) as integer)
