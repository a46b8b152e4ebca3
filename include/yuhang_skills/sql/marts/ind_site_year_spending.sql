-- Spending per site, year, fund source and category (integer fen), with the finance rows and
-- current submissions it came from. eligible_use says whether the category is one provincial
-- money may pay for (ref_codes 'eligible_provincial_categories', from the policy); summed over
-- sources and categories a site-year gives ind_site_year.spend_total_fen of basis 'reported'.
with finance as (
    select * from stg_finance
),

sites as (
    select site_code, programme from ref_sites
),

eligible as (
    select code from ref_codes where code_list = 'eligible_provincial_categories'
)

select
    f.site_code,
    s.programme,
    cast(substr(f.period, 1, 4) as integer) as year,
    f.fund_source,
    f.category,
    max(case when f.category in (select code from eligible) then 1 else 0 end) as eligible_use,
    cast(sum(f.amount_fen) as bigint) as amount_fen,
    count(*) as finance_rows,
    count(distinct f.submission_id) as submissions
from finance as f
left join sites as s on s.site_code = f.site_code
group by f.site_code, s.programme, cast(substr(f.period, 1, 4) as integer), f.fund_source, f.category
