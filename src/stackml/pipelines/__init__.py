"""The shape every pipeline shares: a configuration typed once, a source, and one way to publish a result.

A pipeline is a capability package (config, steps, result, pyfunc, report) over these pieces, a thin Metaflow
flow that calls its step functions, and a CLI module built from :mod:`stackml.cli._pipeline`. This package
imports no Metaflow, Typer, FastAPI or Rich (an import-linter contract holds it), and MLflow only inside
:func:`publish`. See ``docs/architecture.md`` for how to add a pipeline.
"""

from stackml.pipelines.config import Float, Int, Names, PipelineConfig, default_of, split_names
from stackml.pipelines.publish import (
    ModelToRegister,
    Publishable,
    Published,
    finite_metrics,
    publish,
    registry_note,
)
from stackml.pipelines.source import Source

__all__ = [
    "PipelineConfig",
    "Names",
    "Int",
    "Float",
    "default_of",
    "split_names",
    "Source",
    "ModelToRegister",
    "Publishable",
    "Published",
    "publish",
    "registry_note",
    "finite_metrics",
]
