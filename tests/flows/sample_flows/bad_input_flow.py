"""A flow whose middle step rejects its input with our own InputError, as a pipeline step does with bad data.

1. start: nothing.
2. middle: raise InputError on a bad horizon (a resume would reuse it, so the failure offers none).
3. end: nothing.
"""

from metaflow import FlowSpec, Parameter, step

from stackml.errors import InputError


class BadInputFlow(FlowSpec):
    """Fails in ``middle`` on a horizon below 1 (the default), every time."""

    horizon = Parameter("horizon", type=int, default=0, help="checked in 'middle', as a pipeline step would")

    @step
    def start(self):
        """Nothing to do."""
        self.next(self.middle)

    @step
    def middle(self):
        """Reject the input."""
        if self.horizon < 1:
            raise InputError(f"'horizon' must be >= 1, got {self.horizon}.", hint="Use --horizon 7.")
        self.next(self.end)

    @step
    def end(self):
        """Finish."""


if __name__ == "__main__":
    BadInputFlow()
