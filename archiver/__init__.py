"""archiver: archive completed NICE CXone contact attempts as reviewed YAML policies declare."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
