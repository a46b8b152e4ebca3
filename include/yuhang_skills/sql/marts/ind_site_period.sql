-- Roster rows, assessments, passes and spending per site and submitted period (month), as the
-- sites reported them (every staged row): what the report's quarterly trend adds up.
with roster as (
    select
        site_code,
        period,
        count(*) as person_times,
        sum(case when assessed then 1 else 0 end) as assessed,
        sum(case when passed then 1 else 0 end) as passed,
        0 as spend_fen,
        0 as provincial_fen
    from stg_roster
    group by site_code, period
),

finance as (
    select
        site_code,
        period,
        0 as person_times,
        0 as assessed,
        0 as passed,
        sum(amount_fen) as spend_fen,
        sum(case when fund_source = 'provincial' then amount_fen else 0 end) as provincial_fen
    from stg_finance
    group by site_code, period
),

both_kinds as (
    select * from roster
    union all
    select * from finance
)

select
    site_code,
    period,
    sum(person_times) as person_times,
    sum(assessed) as assessed,
    sum(passed) as passed,
    cast(sum(spend_fen) as bigint) as spend_fen,
    cast(sum(provincial_fen) as bigint) as provincial_fen
from both_kinds
group by site_code, period
