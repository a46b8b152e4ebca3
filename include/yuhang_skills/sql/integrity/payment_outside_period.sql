-- A payment dated before the implementation period starts or after it ends
-- (ref_implementation_period, from the policy); intake's date tolerance lets such rows in.
-- One finding per payment, which would be excluded; measure = yuan.
select
    f.submission_id || '|' || cast(f.source_row as varchar(12)) as finding_key,
    c.year,
    'voucher' as subject_kind,
    f.voucher_no as subject,
    f.amount_fen / 100.0 as measure,
    cast(null as numeric) as threshold,
    'finance' as kind,
    f.submission_id,
    f.source_row,
    f.site_code as row_site,
    f.period as row_period,
    1 as would_exclude
from stg_finance as f
cross join ref_implementation_period as p
inner join ref_calendar as c on c.day = f.pay_date
where f.pay_date < p.start_date or f.pay_date > p.end_date
