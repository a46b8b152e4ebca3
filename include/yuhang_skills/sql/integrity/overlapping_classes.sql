-- One person in two classes that share at least one day, at one site or at several.
-- Of two overlapping classes the one that started first (then site, then class id) counts; the
-- person's rows in the later one would be excluded. Only an earlier class that counts itself (it
-- overlaps no class before it) excludes a later one: in A, B, C where B overlaps A and C overlaps
-- only B, B is excluded and C counts. One finding per person and excluded class, its evidence the
-- excluded class's rows and the earlier class's rows.
-- Only people with more than one roster row can overlap: they are found first, through the
-- person index, so the pairing never touches the large majority who trained once.
with repeaters as (
    select person_key
    from stg_roster
    group by person_key
    having count(*) > 1
),

roster as (
    select submission_id, source_row, site_code, period, class_id, person_key, start_date, end_date
    from stg_roster
    where person_key in (select person_key from repeaters)
),

overlapping as (
    select
        later.person_key,
        later.site_code,
        later.class_id,
        later.start_date,
        later.submission_id as later_submission_id,
        later.source_row as later_source_row,
        later.period as later_period,
        earlier.site_code as earlier_site_code,
        earlier.class_id as earlier_class_id,
        earlier.submission_id as earlier_submission_id,
        earlier.source_row as earlier_source_row,
        earlier.period as earlier_period
    from roster as later
    inner join roster as earlier
        on earlier.person_key = later.person_key
        and earlier.start_date <= later.end_date
        and later.start_date <= earlier.end_date
        and (
            earlier.start_date < later.start_date
            or (earlier.start_date = later.start_date and earlier.site_code < later.site_code)
            or (earlier.start_date = later.start_date and earlier.site_code = later.site_code
                and earlier.class_id < later.class_id)
        )
),

-- classes that overlap an earlier class: they exclude nothing themselves
overlapped as (
    select distinct person_key, site_code, class_id
    from overlapping
),

excluding as (
    select o.*
    from overlapping as o
    where not exists (
        select 1 from overlapped as x
        where x.person_key = o.person_key and x.site_code = o.earlier_site_code and x.class_id = o.earlier_class_id
    )
),

evidence as (
    select person_key, site_code, class_id, start_date, later_submission_id as submission_id,
        later_source_row as source_row, site_code as row_site, later_period as row_period, 1 as would_exclude
    from excluding
    union
    select person_key, site_code, class_id, start_date, earlier_submission_id, earlier_source_row,
        earlier_site_code, earlier_period, 0
    from excluding
)

select
    e.person_key || '|' || e.site_code || '|' || e.class_id as finding_key,
    c.year,
    'person' as subject_kind,
    e.person_key as subject,
    cast(null as numeric) as measure,
    cast(null as numeric) as threshold,
    'roster' as kind,
    e.submission_id,
    e.source_row,
    e.row_site,
    e.row_period,
    e.would_exclude
from evidence as e
inner join ref_calendar as c on c.day = e.start_date
