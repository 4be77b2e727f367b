"""A tiny flow for the runner's tests: a parameter, a foreach and a join.

1. start: make ``n`` items.
2. square: square each item, one task per item.
3. join: sum the squares.
4. end: record which stackml home the steps saw.
"""

import os

from metaflow import FlowSpec, Parameter, step


class HelloFlow(FlowSpec):
    """Sum of the squares of 0..n-1, computed one task per item."""

    n = Parameter("n", default=3, type=int, help="how many items to square")

    @step
    def start(self):
        """Make the items."""
        self.items = list(range(self.n))
        self.next(self.square, foreach="items")

    @step
    def square(self):
        """Square one item."""
        self.value = self.input**2
        self.next(self.join)

    @step
    def join(self, inputs):
        """Sum the squares."""
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        """Record the environment the runner gave the steps."""
        self.stackml_home = os.environ.get("STACKML_HOME")
        self.telemetry_off = os.environ.get("MLFLOW_DISABLE_TELEMETRY")
        print(f"total={self.total}")


if __name__ == "__main__":
    HelloFlow()
