from pathlib import Path

import pytest

from stackml.config import Settings, get_settings
from stackml.errors import ConfigError


def test_defaults_hang_off_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STACKML_HOME")
    s = get_settings()
    home = tmp_path / ".stackml"
    assert s.home == home
    assert s.warehouse_url == f"duckdb:///{home / 'warehouse.duckdb'}"
    assert s.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert s.artifact_location == (home / "mlartifacts").as_uri()
    assert s.reports_dir == home / "reports"
    assert s.postgres_url is None and s.api_token is None


def test_env_overrides_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKML_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("STACKML_POSTGRES_URL", "postgresql://u@db:5432/x")
    monkeypatch.setenv("STACKML_API_TOKEN", "s3cret")
    s = get_settings()
    assert s.home == tmp_path / "h"
    assert s.warehouse_url.endswith(str(tmp_path / "h" / "warehouse.duckdb"))
    assert s.postgres_url == "postgresql://u@db:5432/x"
    assert s.api_token is not None and s.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_precedence_args_over_env_over_yaml_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STACKML_HOME")
    (tmp_path / "stackml.yaml").write_text(
        "home: from-yaml\nwarehouse_url: duckdb:///yaml.duckdb\ntracking_uri: sqlite:///yaml.db\n"
        "reports_dir: yaml-reports\n"
    )
    monkeypatch.setenv("STACKML_WAREHOUSE_URL", "duckdb:///env.duckdb")
    monkeypatch.setenv("STACKML_TRACKING_URI", "sqlite:///env.db")
    s = get_settings(tracking_uri="sqlite:///arg.db")
    assert s.tracking_uri == "sqlite:///arg.db"  # argument beats env
    assert s.warehouse_url == "duckdb:///env.duckdb"  # env beats yaml
    assert s.home == tmp_path / "from-yaml"  # yaml beats default
    assert s.reports_dir == tmp_path / "yaml-reports"
    assert (
        s.artifact_location == (tmp_path / "from-yaml" / "mlartifacts").as_uri()
    )  # default derived from yaml home


def test_config_file_from_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text("postgres_url: postgresql://postgres@127.0.0.1:5432/test\n")
    monkeypatch.setenv("STACKML_CONFIG", str(cfg))
    assert get_settings().postgres_url == "postgresql://postgres@127.0.0.1:5432/test"


def test_missing_config_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKML_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="STACKML_CONFIG points to .*missing.yaml.*not a file"):
        get_settings()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("warehouse_url: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("no_such_setting: 1\n", "no_such_setting: Extra inputs are not permitted"),
    ],
)
def test_bad_yaml_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, match: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stackml.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        get_settings()


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="home"):
        get_settings(home=["not", "a", "path"])


def test_settings_class_direct_use(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "x")
    assert s.ensure_home().is_dir()
