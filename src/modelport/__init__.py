"""modelport: deploy registered machine-learning models as web services."""

from __future__ import annotations

__version__ = "0.1.0"
