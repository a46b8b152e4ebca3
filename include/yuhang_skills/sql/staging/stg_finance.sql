-- materialized: view
-- Payments of the current submissions (integer fen), as intake staged them in raw_finance.
select
    f.submission_id,
    f.source_row,
    f.site_code,
    f.period,
    f.voucher_no,
    f.pay_date,
    f.amount_fen,
    f.fund_source,
    f.category,
    f.payee,
    f.invoice_no,
    f.description
from raw_finance as f
where f.submission_id in (select submission_id from submissions where is_current = true)
