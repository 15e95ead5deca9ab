"""The APIs archiver acts through, one package each, known to the engine only as
:class:`archiver.engine.backend.Backend`: :mod:`campaign_archive` (``connection.api:
campaign-archive``, the default) and :mod:`cxone` (NICE CXone's platform API).
:mod:`catalog` says what each provides without loading it (policy validation asks)."""
