-- materialized: view
-- Village outcome reports ("一户一技") of the current submissions, as intake staged them in
-- raw_outcomes.
select
    o.submission_id,
    o.source_row,
    o.site_code,
    o.period,
    o.year,
    o.low_income_households,
    o.households_with_skill,
    o.trainees,
    o.avg_income_gain_fen
from raw_outcomes as o
where o.submission_id in (select submission_id from submissions where is_current = true)
