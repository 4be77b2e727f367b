"""stackml: from a warehouse table to a tracked, registered, served and monitored model, with a report.

The top level stays import-light so ``stackml --help`` is fast; each capability lives in its own
subpackage (``stackml.warehouse``, ``stackml.tracking``, ``stackml.reports``, ...).
"""

from stackml.errors import StackmlError

__version__ = "0.1.0"
__all__ = ["StackmlError", "__version__"]
