"""Entry point for ``python -m archiver`` and the ``archiver`` console script."""

from __future__ import annotations

from archiver.cli import main

if __name__ == "__main__":
    main()
