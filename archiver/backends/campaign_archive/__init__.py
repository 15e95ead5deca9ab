"""``connection.api: campaign-archive`` (the default): the tutorial's archive contract.

Its HTTP client and wire format live in :mod:`archiver.cxone` (``wire.py`` is every
key the API speaks); this package puts them behind
:class:`archiver.engine.backend.Backend`: :mod:`records` (listed records to
``AttemptRecord``), :mod:`listing` (offset paging with a look-ahead),
:mod:`payloads` (archive bodies), :mod:`backend`.
"""

from archiver.backends.campaign_archive.backend import CampaignArchiveBackend
from archiver.backends.campaign_archive.records import parse_record

__all__ = ["CampaignArchiveBackend", "parse_record"]
