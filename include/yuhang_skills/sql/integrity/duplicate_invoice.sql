-- The same invoice number on payments of two or more sites. The earliest payment (pay date,
-- then site, voucher) counts; the others would be excluded. measure = payments with the number.
with payments as (
    select submission_id, source_row, site_code, period, voucher_no, pay_date, invoice_no
    from stg_finance
    where invoice_no is not null
),

shared as (
    select invoice_no
    from payments
    group by invoice_no
    having count(distinct site_code) > 1
),

ranked as (
    select
        p.*,
        row_number() over (
            partition by p.invoice_no order by p.pay_date, p.site_code, p.voucher_no, p.submission_id, p.source_row
        ) as nth,
        count(*) over (partition by p.invoice_no) as uses
    from payments as p
    inner join shared as s on s.invoice_no = p.invoice_no
)

select
    k.invoice_no as finding_key,
    c.year,
    'invoice' as subject_kind,
    k.invoice_no as subject,
    cast(k.uses as numeric) as measure,
    cast(1 as numeric) as threshold,
    'finance' as kind,
    k.submission_id,
    k.source_row,
    k.site_code as row_site,
    k.period as row_period,
    case when k.nth > 1 then 1 else 0 end as would_exclude
from ranked as k
inner join ref_calendar as c on c.day = k.pay_date
