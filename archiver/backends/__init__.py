"""The APIs archiver acts through, one package each, known to the engine only as
:class:`archiver.engine.backend.Backend`."""
