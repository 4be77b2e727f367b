"""Settings of stackml: one object, read from arguments, ``STACKML_*`` variables and ``stackml.yaml``.

Precedence, highest first: keyword arguments, environment variables (``STACKML_HOME``,
``STACKML_WAREHOUSE_URL``, ...), the YAML file (``$STACKML_CONFIG`` or ``./stackml.yaml``), defaults.
Everything defaults under ``./.stackml`` so a fresh clone needs no configuration.

Example:
    >>> from stackml.config import Settings
    >>> s = Settings(home="/tmp/demo")
    >>> s.warehouse_url
    'duckdb:////tmp/demo/warehouse.duckdb'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from stackml.errors import ConfigError

__all__ = ["Settings", "get_settings", "config_file_path"]

CONFIG_FILE_ENV = "STACKML_CONFIG"
DEFAULT_CONFIG_FILE = "stackml.yaml"


def config_file_path() -> Path | None:
    """The YAML file to read: ``$STACKML_CONFIG`` (which must exist) or ``./stackml.yaml`` when present."""
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_FILE_ENV} points to '{explicit}', which is not a file.",
                hint=f"Create it or unset {CONFIG_FILE_ENV} to use ./{DEFAULT_CONFIG_FILE}.",
            )
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the optional YAML file; unknown keys are rejected by the model like any other input."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = self._load()

    @staticmethod
    def _load() -> dict[str, Any]:
        path = config_file_path()
        if path is None:
            return {}
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}", hint="Fix the file or remove it.") from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path} must hold a mapping of settings, got {type(data).__name__}.",
                hint="Write it as 'key: value' lines, e.g. 'warehouse_url: duckdb:///data.duckdb'.",
            )
        return data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Where stackml keeps its data and which services it talks to.

    Attributes:
        home: root folder of everything stackml writes by default (``STACKML_HOME``).
        warehouse_url: ``duckdb:///path.duckdb`` or ``postgresql://user@host:port/db``.
        tracking_uri: MLflow tracking URI; default a SQLite file in ``home``.
        artifact_location: where MLflow stores artifacts of new experiments.
        postgres_url: PostgreSQL for the feature store, metadata and application state.
        reports_dir: folder of the HTML reports and their ``index.html``.
        api_token: bearer token the prediction service requires, when set.
    """

    model_config = SettingsConfigDict(env_prefix="STACKML_", extra="forbid", validate_default=True)

    home: Path = Field(default=Path(".stackml"))
    warehouse_url: str | None = None
    tracking_uri: str | None = None
    artifact_location: str | None = None
    postgres_url: str | None = None
    reports_dir: Path | None = None
    api_token: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        # Defaults hang off `home`, so moving the home moves everything that was not set explicitly.
        home = self.home.expanduser().absolute()
        self.home = home
        if self.warehouse_url is None:
            self.warehouse_url = f"duckdb:///{home / 'warehouse.duckdb'}"
        if self.tracking_uri is None:
            self.tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        if self.artifact_location is None:
            self.artifact_location = (home / "mlartifacts").as_uri()
        if self.reports_dir is None:
            self.reports_dir = home / "reports"
        self.reports_dir = self.reports_dir.expanduser().absolute()
        return self

    def ensure_home(self) -> Path:
        """Create the home folder when it is missing and return it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def get_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation failures into a :class:`ConfigError` that names the
    field."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(
            f"Invalid stackml settings: {problems}.",
            hint="Check the STACKML_* environment variables and stackml.yaml.",
        ) from exc
