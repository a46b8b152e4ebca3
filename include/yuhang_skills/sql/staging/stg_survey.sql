-- materialized: view
-- Satisfaction answers of the current submissions, as intake staged them in raw_survey.
select
    s.submission_id,
    s.source_row,
    s.site_code,
    s.period,
    s.respondent_type,
    s.survey_date,
    s.rating
from raw_survey as s
where s.submission_id in (select submission_id from submissions where is_current = true)
