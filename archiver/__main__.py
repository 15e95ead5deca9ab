"""Entry point for ``python -m archiver`` and the ``archiver`` console script."""

from __future__ import annotations

import gc


def main() -> None:
    # Start-up builds only objects that live until exit (modules, classes, schema
    # validators): looking for garbage among them is wasted work, tens of ms of it.
    # The collector is off until the verb is loaded; cli.main's group then freezes
    # what start-up built and turns the collector back on.
    gc.disable()
    from archiver.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
