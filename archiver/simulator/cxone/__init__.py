"""The simulator's ``cxone`` personality: NICE CXone's published platform API on loopback.

It reads the API independently of :mod:`archiver.backends.cxone` (nothing is
imported from there), so a misreading in one shows up as a failure in the other.
The auth host and the API host are one loopback port: discovery answers the
simulator's own URL as ``api_endpoint``.

What it copies from public sources: the token endpoint (password and refresh_token
grants, the application as HTTP Basic or form fields, 400 ``{error,
error_description}``), discovery (404 for an unknown tenant), 406 without ``Accept:
application/json``, UTC ``Z`` dates, completed contacts paged by ``updatedSince``,
``orderBy``, ``skip`` and ``top`` with 204 when empty, dispositions, skills with
``isRunning`` and 202 start and stop, calling-list attempts and removeProspects
with per-record results, the three error body shapes and ``icStatusDescription``.

What it invents where the sources are silent is a ``Behaviour`` setting named
``invented_*``: the rate limit (429 without Retry-After), whether updatedSince is
inclusive, the meaning of a 409 on skills, how long a stop takes, removeProspects'
result codes. Also invented, and fixed: the order of calling-list attempts
(contactId), 204 for an empty attempts page, ``{list}`` of removeProspects being the
list id, refresh tokens usable once, updates stamped with strictly increasing times.

    with CxoneSimulator(CxoneSimConfig(), Behaviour(churn_per_request=3)) as sim:
        sim.base_url, sim.campaign_ids, sim.contacts(cid), sim.ledger(), sim.requests()
"""

from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.cxone.server import CxoneSimulator

__all__ = ["Behaviour", "CxoneSimConfig", "CxoneSimulator"]
