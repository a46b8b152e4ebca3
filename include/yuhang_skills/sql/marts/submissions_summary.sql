-- materialized: view
-- The submissions manifest by site and kind: file versions, current files, outcome counts
-- (rejected: the site must send the file again), rows read / staged / quarantined and the latest
-- receipt. A view: the report shows the manifest as it is when the report is built.
select
    site_code,
    kind,
    count(*) as files,
    sum(case when is_current then 1 else 0 end) as current_files,
    sum(case when status = 'accepted' then 1 else 0 end) as accepted,
    sum(case when status = 'partially_accepted' then 1 else 0 end) as partially_accepted,
    sum(case when status in ('rejected', 'no_rows_accepted') then 1 else 0 end) as rejected,
    sum(rows_read) as rows_read,
    sum(rows_staged) as rows_staged,
    sum(rows_quarantined) as rows_quarantined,
    max(received_at) as last_received_at
from submissions
group by site_code, kind
