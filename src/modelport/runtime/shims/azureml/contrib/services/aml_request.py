"""``AMLRequest`` and ``rawhttp`` for entry scripts, served by modelport."""

from modelport.runtime.aml_http import AMLRequest, rawhttp

__all__ = ["AMLRequest", "rawhttp"]
