import subprocess
import sys

import pytest


def test_torch_imports_after_metaflows_vendored_typing_extensions() -> None:
    """Inside a Metaflow task the vendored typing_extensions loads after the real one;
    torch must still import."""
    pytest.importorskip("metaflow")
    pytest.importorskip("torch")
    code = (
        "import typing_extensions, metaflow._vendor.typing_extensions\n"
        "from stackml._deps import require\n"
        "require('torch'); print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_signature_is_inferred_in_a_python_c_process_with_spark_installed() -> None:
    """MLflow's infer_signature imports pyspark.sql.connect whenever pyspark is installed; without Spark
    Connect's dependencies that import ends a process whose __main__ has no file (``python -c``, a
    pytest-xdist worker, a notebook) with sys.exit(0), silently: registering a model stopped the program.
    stackml[spark] therefore installs pyspark[connect]."""
    pytest.importorskip("pyspark")
    pytest.importorskip("mlflow")
    code = (
        "import pandas as pd, mlflow.models\n"
        "mlflow.models.infer_signature(pd.DataFrame({'a': [1.0]}), [0.5])  # a list reaches the Spark check\n"
        "print('signed')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "signed", proc.stderr[-2000:]
