"""``AMLResponse`` for entry scripts, served by modelport."""

from modelport.runtime.aml_http import AMLResponse

__all__ = ["AMLResponse"]
