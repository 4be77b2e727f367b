"""The environment a flow runs in: a user name, the datastore, the caller's settings, and how to resume.

Every flow gets the same surroundings: a user name (Metaflow refuses to run without one, and refuses
``root``), Metaflow's local datastore under the stackml home instead of the current directory, the
caller's settings as ``STACKML_*`` variables so steps calling ``get_settings()`` see the same home,
warehouse and tracking store, and MLflow telemetry switched off. A failed run's resume command is
built here from the same variables.
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

from stackml.config import Settings

# Metaflow's local datastore root: it writes to "<root>/.metaflow" (metaflow_config.DATASTORE_SYSROOT_LOCAL).
DATASTORE_ROOT_ENV = "METAFLOW_DATASTORE_SYSROOT_LOCAL"
FALLBACK_USER = "stackml"
# Settings handed to the flow's processes; api_token is a secret and never printed in a hint.
_SETTINGS_FIELDS = (
    "home",
    "warehouse_url",
    "tracking_uri",
    "artifact_location",
    "postgres_url",
    "reports_dir",
)


def default_user(environ: dict[str, str]) -> str:
    """The user Metaflow will record: an explicit one, else the login, else ``stackml``.

    Metaflow refuses ``root``, the usual login in containers, so it counts as no user.
    """
    for key in ("METAFLOW_USER", "USERNAME"):
        if environ.get(key) and environ[key] != "root":
            return environ[key]
    try:
        login = getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError when there is no passwd entry (containers)
        login = ""
    return login if login and login != "root" else FALLBACK_USER


def ensure_client_user(user: str) -> None:
    """Give this process a user name when it has none Metaflow accepts.

    Metaflow's client resolves a default namespace from the user name when it reads a run back, and
    raises ``MetaflowUnknownUser`` without one, so the caller's process needs it as much as the flow's.
    """
    if not any(
        os.environ.get(k) not in (None, "", "root")
        for k in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")
    ):
        os.environ["USERNAME"] = user


def _settings_env(settings: Settings) -> dict[str, str]:
    """``STACKML_*`` variables reproducing ``settings`` in the flow's processes."""
    env = {f"STACKML_{name.upper()}": str(getattr(settings, name)) for name in _SETTINGS_FIELDS}
    env = {k: v for k, v in env.items() if v != "None"}
    if settings.api_token is not None:
        env["STACKML_API_TOKEN"] = settings.api_token.get_secret_value()
    return env


def flow_env(settings: Settings, extra: dict[str, str] | None) -> dict[str, str]:
    """Variables added to the current environment for the flow; ``extra`` (the caller's) wins."""
    user = default_user({**os.environ, **(extra or {})})
    env = {"USERNAME": user, "METAFLOW_USER": user}
    # Keep an explicit, non-root choice of the user; only fill in what Metaflow would lack.
    env = {k: v for k, v in env.items() if not os.environ.get(k) or os.environ[k] == "root"}
    env[DATASTORE_ROOT_ENV] = str(settings.home)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(_settings_env(settings))
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def resume_env(settings: Settings, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The variables a resume needs, and the names left out because their value holds a password.

    Settings that ``home`` alone implies are left out to keep the command short.
    """
    implied = _settings_env(type(settings).model_construct(home=settings.home)._derive_defaults())
    needed = {
        "USERNAME": env.get("USERNAME") or default_user(dict(os.environ)),
        DATASTORE_ROOT_ENV: env[DATASTORE_ROOT_ENV],
    }
    withheld = []
    for key, value in _settings_env(settings).items():
        if key == "STACKML_API_TOKEN" or implied.get(key) == value:
            continue
        if urlsplit(value).password:
            withheld.append(key)
        else:
            needed[key] = env.get(key, value)
    needed["STACKML_HOME"] = env.get("STACKML_HOME", str(settings.home))
    return needed, withheld


def resume_command(flow_file: Path, run_id: str, env: dict[str, str]) -> str:
    assignments = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    argv = [sys.executable, str(flow_file), "resume", "--origin-run-id", run_id]
    return " ".join(assignments + [shlex.quote(a) for a in argv])
