-- Practical training bases: eligible equipment cost over the implementation period, the
-- entitlement min(share x cost, cap) with share and cap from the policy (ref_base_rule), the
-- plan money paid to the base, and the difference (paid - entitlement; > 0 means overpaid).
-- Bases active in the implementation period only; fen amounts are floored to whole fen. Equipment
-- is what counts after integrity exclusions (basis 'counted').
with equipment as (
    select site_code, cast(sum(equipment_fen) as bigint) as equipment_fen
    from ind_site_year
    where programme = 'base' and basis = 'counted'
    group by site_code
),

rule as (
    select * from ref_base_rule
)

select
    s.site_code,
    s.name_zh,
    coalesce(e.equipment_fen, 0) as eligible_equipment_fen,
    case when coalesce(e.equipment_fen, 0) * rule.share_numerator / rule.share_denominator > rule.cap_fen
        then rule.cap_fen
        else coalesce(e.equipment_fen, 0) * rule.share_numerator / rule.share_denominator
    end as entitlement_fen,
    s.plan_provincial_fen + s.plan_district_fen as paid_fen,
    s.plan_provincial_fen + s.plan_district_fen - case
        when coalesce(e.equipment_fen, 0) * rule.share_numerator / rule.share_denominator > rule.cap_fen
        then rule.cap_fen
        else coalesce(e.equipment_fen, 0) * rule.share_numerator / rule.share_denominator
    end as difference_fen
from ref_sites as s
cross join rule
left join equipment as e on e.site_code = s.site_code
where s.programme = 'base'
    and s.site_code in (select site_code from ref_site_years)
