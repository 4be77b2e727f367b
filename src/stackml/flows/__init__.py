"""The pipelines of stackml as Metaflow flows, and the runner the CLI starts them with.

Each built-in pipeline is a thin ``FlowSpec`` in ``<name>_flow.py`` next to this file. Importing this
package stays cheap: Metaflow itself is imported only when a flow is run.

Example:
    >>> from stackml.flows import run_flow
    >>> result = run_flow("hello_flow.py", {"n": 3}, show_progress=False)  # doctest: +SKIP
    >>> result.run["end"].task.data.total  # doctest: +SKIP
    5
"""

from stackml.flows._progress import step_progress
from stackml.flows.pipeline_run import run_pipeline_flow
from stackml.flows.runner import (
    FlowInterruptedError,
    FlowResult,
    available_flows,
    flow_path,
    load_run,
    run_flow,
)

__all__ = [
    "FlowInterruptedError",
    "FlowResult",
    "available_flows",
    "flow_path",
    "load_run",
    "run_flow",
    "run_pipeline_flow",
    "step_progress",
]
