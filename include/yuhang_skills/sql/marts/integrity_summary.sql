-- What the integrity checks took out of the indicators, per check and year of the rows taken
-- out: staged rows excluded (roster and finance, each once, with the check that excluded it),
-- person-times out (a person-time of a site-year, as int_roster_site_year counts it, is out
-- when none of its rows of that year counts, so they add up to the difference between the
-- reported and the counted person-times; it goes to the first check that excluded one of its
-- rows) and money excluded. The evaluation adds up the years it evaluates; the findings
-- themselves are in integrity_findings.
with excluded_roster as (
    select
        x.check_name,
        x.finding_id,
        r.site_code,
        r.class_id,
        r.person_key,
        cast(substr(r.period, 1, 4) as integer) as year
    from integrity_exclusions as x
    join stg_roster as r on r.submission_id = x.submission_id and r.source_row = x.source_row
    where x.kind = 'roster'
),

excluded_finance as (
    select
        x.check_name,
        cast(substr(f.period, 1, 4) as integer) as year,
        f.amount_fen
    from integrity_exclusions as x
    join stg_finance as f on f.submission_id = x.submission_id and f.source_row = x.source_row
    where x.kind = 'finance'
),

-- person-times without a row that counts
person_times_out as (
    select
        e.year,
        e.site_code,
        e.class_id,
        e.person_key,
        min(e.finding_id) as finding_id
    from excluded_roster as e
    where not exists (
        select 1
        from stg_roster as k
        where k.site_code = e.site_code and k.class_id = e.class_id and k.person_key = e.person_key
            and cast(substr(k.period, 1, 4) as integer) = e.year
            and not exists (
                select 1 from integrity_exclusions as kx
                where kx.kind = 'roster' and kx.submission_id = k.submission_id and kx.source_row = k.source_row
            )
    )
    group by e.year, e.site_code, e.class_id, e.person_key
),

taken_out as (
    select check_name, year, 1 as excluded_rows, 0 as excluded_person_times, 0 as excluded_fen
    from excluded_roster
    union all
    select check_name, year, 1 as excluded_rows, 0 as excluded_person_times, amount_fen as excluded_fen
    from excluded_finance
    union all
    select x.check_name, p.year, 0 as excluded_rows, 1 as excluded_person_times, 0 as excluded_fen
    from person_times_out as p
    join integrity_findings as x on x.finding_id = p.finding_id
)

select
    check_name,
    year,
    sum(excluded_rows) as excluded_rows,
    sum(excluded_person_times) as excluded_person_times,
    cast(sum(excluded_fen) as bigint) as excluded_fen
from taken_out
group by check_name, year
