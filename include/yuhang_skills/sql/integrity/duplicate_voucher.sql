-- The same payment booked by two or more sites: the same voucher number, amount and payee.
-- (Voucher numbers alone repeat across sites: each site numbers its own ledger.) The earliest
-- booking counts; the others would be excluded. measure = amount in yuan.
with shared as (
    select voucher_no, amount_fen, payee
    from stg_finance
    group by voucher_no, amount_fen, payee
    having count(distinct site_code) > 1
),

ranked as (
    select
        f.*,
        row_number() over (
            partition by f.voucher_no, f.amount_fen, f.payee order by f.pay_date, f.site_code, f.submission_id, f.source_row
        ) as nth
    from stg_finance as f
    inner join shared as s
        on s.voucher_no = f.voucher_no and s.amount_fen = f.amount_fen and s.payee = f.payee
)

select
    k.voucher_no || '|' || cast(k.amount_fen as varchar(20)) || '|' || k.payee as finding_key,
    c.year,
    'voucher' as subject_kind,
    k.voucher_no as subject,
    k.amount_fen / 100.0 as measure,
    cast(null as numeric) as threshold,
    'finance' as kind,
    k.submission_id,
    k.source_row,
    k.site_code as row_site,
    k.period as row_period,
    case when k.nth > 1 then 1 else 0 end as would_exclude
from ranked as k
inner join ref_calendar as c on c.day = k.pay_date
