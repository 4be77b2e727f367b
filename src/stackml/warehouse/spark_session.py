"""The one Spark session of this process, started on first use, and the catalog that mirrors table folders.

Spark starts a JVM (seconds), so a process holds one session, shared by every Spark warehouse it opens, and
starts it only when a statement first needs it: connecting, listing tables and loading files do not. The
session suits a laptop or a CI machine (no web UI, 4 shuffle partitions, 1 GB of driver memory, no Hive) and
pins time to UTC with timestamps that carry no time zone (``TIMESTAMP`` is ``TIMESTAMP_NTZ``), as DuckDB and
PostgreSQL read them, so no value moves with the machine's time zone.

Tables live as Parquet folders, not in a metastore: before each statement :func:`sync_catalog` registers the
folders of the warehouse in the session's in-memory catalog, and registers again a folder that another process
replaced or appended to, so every process sees what the others wrote.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import Any

from stackml._deps import require
from stackml.errors import ConnectionFailedError, MissingDependencyError

__all__ = ["forget", "log_path", "require_java", "spark_session", "sync_catalog"]

MIN_JAVA = 17
_JAVA_HINT = (
    "Install a Java runtime 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`) and put `java` on "
    "the PATH or set JAVA_HOME."
)
# Static settings, fixed when the JVM starts.
_START_CONF = {
    "spark.app.name": "stackml",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.catalogImplementation": "in-memory",
}
# Settings of our SQL session; a process that already runs Spark keeps its own on its own session.
_SESSION_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    # "name" is a name, as on DuckDB and PostgreSQL (and as quote_table writes it), not a string.
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

_lock = threading.RLock()
_session: Any = None
_log_path: Path | None = None
# table name -> (folder, fingerprint) of what this process registered in the catalog
_registered: dict[str, tuple[str, tuple[Any, ...]]] = {}


def require_java() -> str:
    """The ``java`` Spark will start, checked to be Java 17 or newer; raises when there is none."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        where = f"JAVA_HOME={home!r} has no bin/java" if home else "no `java` on the PATH and JAVA_HOME unset"
        raise MissingDependencyError(
            f"The Spark warehouse needs Java {MIN_JAVA}+ and found none ({where}).", hint=_JAVA_HINT
        )
    major = _java_major(java)
    if major is not None and major < MIN_JAVA:
        raise MissingDependencyError(
            f"The Spark warehouse needs Java {MIN_JAVA}+; {java} is Java {major}.", hint=_JAVA_HINT
        )
    return java


@cache
def _java_major(java: str) -> int | None:
    """The major version ``java -version`` prints (``1.8`` is 8); None when it prints something else."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def log_path() -> Path | None:
    """Where the JVM of this process writes its log (None before it starts)."""
    return _log_path


def spark_session(master: str, log_dir: Path) -> Any:
    """This process's Spark session, started on first call; the JVM's output goes to ``log_dir/spark.log``.

    The first call decides the master; later calls share its session. A process that already runs Spark (a
    notebook) lends its JVM: we take a session of our own on it, with our SQL settings.
    """
    global _session
    with _lock:
        if _session is not None:
            return _session
        require("pyspark", "spark")
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        session = active.newSession() if active is not None else _start(master, log_dir)
        for key, value in _SESSION_CONF.items():
            session.conf.set(key, value)
        _quiet_python_loggers()
        _session = session
        return session


def _start(master: str, log_dir: Path) -> Any:
    global _log_path
    from pyspark import SparkConf, SparkContext
    from pyspark.errors import PySparkException
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    require_java()
    log_dir.mkdir(parents=True, exist_ok=True)
    _log_path = log_dir / "spark.log"
    # Spark's managed tables and databases land here; ours are external (the warehouse folders), so this only
    # keeps Spark from creating ./spark-warehouse in the current directory.
    scratch = tempfile.mkdtemp(prefix="stackml-spark-")
    atexit.register(shutil.rmtree, scratch, True)
    conf = SparkConf().setMaster(master).setAll([*_START_CONF.items(), ("spark.sql.warehouse.dir", scratch)])
    # The JVM writes its log4j output and start-up warnings to stderr: into the log file, not the terminal.
    with _log_path.open("ab") as log:
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
            context = SparkContext(conf=conf, gateway=gateway)
        except (PySparkException, OSError, RuntimeError) as exc:
            raise ConnectionFailedError(
                f"Spark did not start: {_log_tail(_log_path) or exc}",
                hint=f"See {_log_path} for the JVM's output.",
            ) from exc
    return SparkSession(context)


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _quiet_python_loggers() -> None:
    """PySpark logs each failed query as a JSON record with the JVM's stack trace; we raise it as one line."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _fingerprint(folder: Path) -> tuple[Any, ...]:
    """What changes when a table folder is replaced (a new folder) or appended to (a new batch folder)."""
    try:
        return (os.stat(folder).st_ino, tuple(sorted(os.listdir(folder))))
    except FileNotFoundError:
        return ()


def sync_catalog(session: Any, folders: dict[str, Path]) -> None:
    """Make the catalog hold exactly the tables ``folders`` names (name -> folder), each over its folder as
    it is now."""
    from pyspark.errors import AnalysisException

    with _lock:
        for name in [n for n in _registered if n not in folders]:
            session.sql(f"DROP TABLE IF EXISTS {_ident(name)}")
            del _registered[name]
        for name, folder in folders.items():
            state = (str(folder), _fingerprint(folder))
            if _registered.get(name) == state:
                continue
            session.sql(f"DROP TABLE IF EXISTS {_ident(name)}")
            _registered.pop(name, None)
            if "." in name:
                session.sql(f"CREATE DATABASE IF NOT EXISTS `{name.split('.')[0]}`")
            try:
                # Each load is a folder of Parquet files inside the table's folder: read them all.
                session.catalog.createTable(
                    _ident(name), path=str(folder), source="parquet", recursiveFileLookup="true"
                )
            except AnalysisException:
                # A folder without Parquet files (made by hand, or emptied) is no table Spark can read;
                # leaving it out keeps every other table usable, and querying it says it is not found.
                pass
            _registered[name] = state


def forget(name: str) -> None:
    """Drop ``name`` from the catalog now (its folder is gone or going)."""
    with _lock:
        if _session is not None and name in _registered:
            _session.sql(f"DROP TABLE IF EXISTS {_ident(name)}")
        _registered.pop(name, None)


def _qualified(name: str) -> str:
    return name if "." in name else f"default.{name}"


def _ident(name: str) -> str:
    # Names come from table_folders or fold_table_name: letters, digits and underscores only.
    return ".".join(f"`{part}`" for part in _qualified(name).split("."))
