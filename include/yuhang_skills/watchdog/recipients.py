"""Who hears about what: every recipient the policy names (site contacts, town/street offices, the
district data team), each on each of its channels.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from yuhang_skills.core.policy import AlertRole, Plan, Site

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """One recipient on one channel: an e-mail address, or a group/webhook connection."""

    channel: str
    address: str  # the e-mail address, or the connection (and scope) of a group robot or webhook
    role: str  # site_contact / town_office / district_team
    sites: tuple[str, ...]  # the sites it hears about (all, for the district team)
    town: str | None = None
    contact_names: tuple[str, ...] = ()  # a site contact's names, as the registry gives them


def recipients(plan: Plan) -> list[Recipient]:
    """Every recipient the policy names, on each of its channels."""
    alerts = plan.policy.alerts
    towns = sorted({s.town for s in plan.sites})
    unknown = [t for t in towns if t not in alerts.town_offices]
    if unknown and alerts.recipients["town_office"].channels:
        raise ValueError(f"alerts.town_offices has no address for the registry's towns {unknown}")
    out: list[Recipient] = []

    def add(
        role: AlertRole,
        scope: str,
        email: str | None,
        sites: tuple[str, ...],
        town: str | None,
        names: tuple[str, ...] = (),
    ) -> None:
        for name in alerts.recipients[role].channels:
            channel = alerts.channels[name]
            if channel.kind == "smtp":
                if email:
                    out.append(Recipient(name, email, role, sites, town, names))
            else:  # a group robot or a webhook: the connection is the recipient (one per scope)
                address = channel.connection_id if role == "district_team" else f"{channel.connection_id}:{scope}"
                out.append(Recipient(name, address, role, sites, town, names))

    by_contact: dict[str, list[Site]] = defaultdict(list)
    for site in plan.sites:
        if site.contact_email:
            by_contact[site.contact_email].append(site)
        else:
            log.warning("site %s has no contact_email in the registry: its contact gets no e-mail", site.site_code)
    for email, sites in sorted(by_contact.items()):
        names = tuple(sorted({s.contact_name for s in sites if s.contact_name}))
        add("site_contact", email, email, tuple(s.site_code for s in sites), None, names)
    for town in towns:
        add(
            "town_office",
            town,
            alerts.town_offices.get(town),
            tuple(s.site_code for s in plan.sites if s.town == town),
            town,
        )
    every = tuple(s.site_code for s in plan.sites)
    for address in alerts.recipients["district_team"].emails or (None,):
        add("district_team", "district", address, every, None)
    return list(dict.fromkeys(out))  # a recipient named twice is told once
