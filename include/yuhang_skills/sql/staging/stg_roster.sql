-- materialized: view
-- Roster rows of the current submissions (one row per trainee per class, as intake staged them
-- in raw_roster: identity hashed, birth date, sex and age derived). Intake already removes the
-- rows of a superseded file; the filter keeps the layer right while a new version is being
-- written. A view, so the integrity checks use raw_roster's indexes on a million rows.
select
    r.submission_id,
    r.source_row,
    r.site_code,
    r.period,
    r.class_id,
    r.course,
    r.occupation,
    r.level,
    r.industry,
    r.start_date,
    r.end_date,
    r.hours,
    r.person_key,
    r.name_key,
    r.birth_date,
    r.sex,
    r.age_on_start,
    r.person_group,
    r.low_income_household,
    r.assessed,
    r.passed,
    r.certificate_no,
    r.satisfaction
from raw_roster as r
where r.submission_id in (select submission_id from submissions where is_current = true)
