-- Provincial money paid for a category outside the policy's eligible uses
-- (ref_codes 'eligible_provincial_categories'). One finding per payment; measure = yuan.
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
inner join ref_calendar as c on c.day = f.pay_date
where f.fund_source = 'provincial'
    and f.category not in (select code from ref_codes where code_list = 'eligible_provincial_categories')
