"""A flow whose middle step fails the first time, like a transient error, and passes on resume.

1. start: set a value.
2. middle: fail when the marker file does not exist yet (creating it), else add one.
3. end: nothing.

The marker path is a parameter, so a resume (which reuses the original parameters) finds it.
"""

from pathlib import Path

from metaflow import FlowSpec, Parameter, step


class FailingFlow(FlowSpec):
    """Fails in ``middle`` on the first attempt only."""

    marker = Parameter("marker", required=True, help="file whose absence makes 'middle' fail")

    @step
    def start(self):
        """Set a value."""
        self.x = 41
        self.next(self.middle)

    @step
    def middle(self):
        """Fail once, as a flaky service would."""
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text("failed once\n")
            raise ConnectionError("warehouse went away on purpose")
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        """Finish."""


if __name__ == "__main__":
    FailingFlow()
