-- The same site sending the same rows again under another period (a May ledger put in the June
-- folder, a class's roster filed in two months): the same person in the same class, or the same
-- payment (voucher number, amount and payee), in the staged data of two or more periods of one
-- site. The earliest period's rows count; the repeats would be excluded. measure = periods.
-- Keys staged in more than one period: their first and last period differ. Found by min and max,
-- which a hash aggregate computes in one pass over a million rows; the periods are counted only
-- for the few keys found.
with roster_repeats as (
    select site_code, class_id, person_key, min(period) as first_period
    from stg_roster
    group by site_code, class_id, person_key
    having min(period) < max(period)
),

roster_keys as (
    select k.site_code, k.class_id, k.person_key, k.first_period, count(distinct r.period) as periods
    from roster_repeats as k
    inner join stg_roster as r
        on r.site_code = k.site_code and r.class_id = k.class_id and r.person_key = k.person_key
    group by k.site_code, k.class_id, k.person_key, k.first_period
),

finance_keys as (
    select site_code, voucher_no, amount_fen, payee, count(distinct period) as periods, min(period) as first_period
    from stg_finance
    group by site_code, voucher_no, amount_fen, payee
    having count(distinct period) > 1
),

evidence as (
    select
        r.site_code || '|roster|' || r.class_id || '|' || r.person_key as finding_key,
        r.start_date as day,
        'person' as subject_kind,
        r.person_key as subject,
        k.periods,
        'roster' as kind,
        r.submission_id,
        r.source_row,
        r.site_code,
        r.period,
        case when r.period > k.first_period then 1 else 0 end as would_exclude
    from stg_roster as r
    inner join roster_keys as k
        on k.site_code = r.site_code and k.class_id = r.class_id and k.person_key = r.person_key

    union all

    select
        f.site_code || '|finance|' || f.voucher_no || '|' || cast(f.amount_fen as varchar(20)) || '|' || f.payee,
        f.pay_date,
        'voucher',
        f.voucher_no,
        k.periods,
        'finance',
        f.submission_id,
        f.source_row,
        f.site_code,
        f.period,
        case when f.period > k.first_period then 1 else 0 end
    from stg_finance as f
    inner join finance_keys as k
        on k.site_code = f.site_code and k.voucher_no = f.voucher_no and k.amount_fen = f.amount_fen
        and k.payee = f.payee
)

select
    e.finding_key,
    c.year,
    e.subject_kind,
    e.subject,
    e.periods as measure,
    cast(null as numeric) as threshold,
    e.kind,
    e.submission_id,
    e.source_row,
    e.site_code as row_site,
    e.period as row_period,
    e.would_exclude
from evidence as e
inner join ref_calendar as c on c.day = e.day
