-- A practical training base allocated more plan money (provincial and district) than its
-- entitlement min(share x equipment cost, cap) (ref_base_rule, from the policy) on the equipment
-- it has reported so far: until its purchases are all booked, a finding to review, not a verdict.
-- measure = allocated yuan, threshold = entitlement yuan; the evidence is its equipment payments.
with equipment as (
    select site_code, sum(amount_fen) as equipment_fen
    from stg_finance
    where category = 'equipment'
    group by site_code
),

bases as (
    select
        s.site_code,
        s.plan_provincial_fen + s.plan_district_fen as paid_fen,
        coalesce(e.equipment_fen, 0) * r.share_numerator / r.share_denominator as share_fen,
        r.cap_fen
    from ref_sites as s
    cross join ref_base_rule as r
    left join equipment as e on e.site_code = s.site_code
    where s.programme = 'base'
        and s.site_code in (select site_code from ref_site_years)
),

over_paid as (
    select
        site_code,
        paid_fen,
        case when share_fen > cap_fen then cap_fen else share_fen end as entitlement_fen
    from bases
)

select
    o.site_code as finding_key,
    cast(null as integer) as year,
    'site' as subject_kind,
    o.site_code as subject,
    o.paid_fen / 100.0 as measure,
    o.entitlement_fen / 100.0 as threshold,
    'finance' as kind,
    f.submission_id,
    f.source_row,
    o.site_code as row_site,
    f.period as row_period,
    0 as would_exclude
from over_paid as o
left join stg_finance as f on f.site_code = o.site_code and f.category = 'equipment'
where o.paid_fen > o.entitlement_fen
