"""The names of the attribution methods (no heavy imports: the CLI reads them for its options)."""

__all__ = ["RULES", "METHODS"]

RULES = ("first_touch", "last_touch", "linear", "time_decay", "position")
METHODS = (*RULES, "markov", "shapley", "neural")
