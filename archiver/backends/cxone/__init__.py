"""``connection.api: cxone``: NICE CXone's published platform API.

    backend = build(tenant_id=..., credentials=credentials_from_env(), page_size=1000)
    for page in backend.pages("1834501", since=None): ...

Modules: :mod:`wire` (every path and JSON key), :mod:`auth` (grants and the token),
:mod:`http` (one exchange, statuses to :mod:`archiver.errors`), :mod:`client`
(discovery, retries, 401), :mod:`paging` (listing a changing order; its docstring
proves it), :mod:`records` (records to ``AttemptRecord``), :mod:`backend`,
:mod:`factory`.

Confirmed by public sources (NICE's developer portal, clients generated from the
v34.0 specifications, community clients; see shared reference notes)
    * Token: ``POST {auth_url}/auth/token``, form body, ``grant_type=password`` with
      the access key id and secret as username and password, the registered
      application's client id and secret as HTTP Basic; ``refresh_token`` grant;
      answers ``access_token, token_type, refresh_token, expires_in, id_token``;
      refusals are 400 ``{error, error_description}``. No client_credentials grant.
    * Discovery: ``GET {auth_url}/.well-known/cxone-configuration?tenantId=`` answers
      ``api_endpoint`` (404 for an unknown tenant); calls go to
      ``{api_endpoint}/inContactAPI/services/{api_version}/``, always with
      ``Accept: application/json``; dates are UTC with a literal ``Z``.
    * ``GET contacts/completed`` (``campaignId, updatedSince, orderBy, skip, top``;
      ``completedContacts[]`` with ``contactId, lastUpdateTime, campaignId,
      primaryDispositionId, totalDurationSeconds``; 204 when empty); ``GET
      dispositions`` (``dispositions[]`` of ``dispositionId, dispositionName``, paged
      by ``skip, top``, counted by ``totalRecords``).
    * ``GET lists/call-lists/{listId}/attempts?finalized=true`` (``resultSet.
      contactAttempts[]`` with ``externalId, contactId, agentDispDesc,
      systemClassName``); ``DELETE lists/call-lists/{list}/removeProspects`` with
      ``{"prospectsToRemove": [{"externalId"}]}``, answering ``successfulRecords`` and
      ``failedRecords`` (a 200 can carry failures).
    * ``GET campaigns/{id}/skills`` (``skills[].skillId``), ``GET skills/{id}``
      (``isRunning``), ``POST skills/{id}/stop?force=false`` and ``POST
      skills/{id}/start`` (202, and a documented 409).
    * Error bodies come as ``{error, error_description}``, ``{code, details,
      errors}`` or ``{message}``, and as an ``icStatusDescription`` header; 429s
      carry no reliable ``Retry-After``; tokens expire during long runs.

Invented or unverified (decided here, to check against a live tenant)
    * Whether ``updatedSince`` keeps records at its exact time, whether an update's
      ``lastUpdateTime`` can tie one already served, and whether records of equal
      time keep their order between requests: :mod:`paging` is correct under the
      assumptions it states and detects (and recovers from) most breaches.
    * The order of ``.../attempts`` (no ``orderBy`` is sent), whether it answers
      204 when empty, and the most attempts one answer holds: an answer that brings
      no new attempt (an empty list, 204) ends the listing, a page shorter than asked
      for does not.
    * Whether ``removeProspects``'s ``{list}`` is the list's id (sent) or its name;
      the generated client types ``externalId`` as a number, which is sent as text.
    * What a second removal of a prospect answers (taken as a failed record), what
      a 409 on stop or start means (accepted when ``GET skills/{id}`` shows the
      wanted state), how long a 202 stop or start takes (``stop_wait_seconds``, waited for both), and whether
      ``GET campaigns/{id}/skills`` pages (one answer is read).
    * How many records an admin list answers at most: a community client reports 100.
      Dispositions are asked for 100 at a time, and a page shorter than that ends
      them only when ``totalRecords`` (if given) counts no more.
    * ``GET skills/{id}``: v34.0 answers the skill bare; ``{"skills": [...]}`` (older
      versions) is read too.
    * Discovery's ``api_endpoint`` is read as a URL; a bare host name gets ``https://``.
    * The token's tenant is the ``tenantId`` claim of its id_token (else of the access
      token), as a community client reads it: one that is not ``connection.tenant_id``
      is refused (an AuthError), and a token that names none is not checked.
    * ``lastPollTime`` of ``contacts/completed`` is taken as the server's time of the
      answer: a run lists no record updated after its first answer (the next run does),
      unless that time lags behind where the run starts listing (it then lists to the end).
    * The tenant's rate limit: no figure is published; 429s adapt the client's rate
      (:class:`archiver.cxone.ratelimit.RateLimiter`) with jittered backoff.
    * A completed contact's outcome is its primary disposition's name, or
      ``(none)`` without one; the API provides no anonymized flag and no retention,
      so ``fields`` leaves them out. Calling-list attempts are identified by their
      own contactId; their contact is the prospect's externalId.
"""

from archiver.backends.cxone.auth import Credentials
from archiver.backends.cxone.backend import CxoneBackend, Source
from archiver.backends.cxone.factory import VARIABLES, build, credentials_from_env

__all__ = ["VARIABLES", "Credentials", "CxoneBackend", "Source", "build", "credentials_from_env"]
