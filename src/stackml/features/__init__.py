"""The feature store: definitions in a repo (entities, sources, feature views of SQL, services), a versioned
registry in the warehouse, and point-in-time correct training sets on DuckDB, PostgreSQL and Spark.

Example:
    >>> from stackml.features import FeatureStore  # doctest: +SKIP
    >>> FeatureStore("feature_repo").get_training_set("entities.parquet", "churn")  # doctest: +SKIP
"""

__all__ = [
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Source",
    "load_repo",
    "parse_ttl",
]

_LAZY = {
    "FeatureStore": "stackml.features.store",
    "Entity": "stackml.features.definitions",
    "Feature": "stackml.features.definitions",
    "FeatureService": "stackml.features.definitions",
    "FeatureView": "stackml.features.definitions",
    "Source": "stackml.features.definitions",
    "parse_ttl": "stackml.features.definitions",
    "load_repo": "stackml.features.repo",
}


def __getattr__(name: str):  # noqa: ANN202 - the warehouse and pandas load when the store is first used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stackml.features' has no attribute {name!r}")
