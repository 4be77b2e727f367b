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
