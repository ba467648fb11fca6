"""The plugin runs inside training processes: it loads nothing of the server beyond what
``import mlflow`` loads by itself."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.client.conftest import Script, free_port, plugin_env

pytestmark = pytest.mark.e2e

LOG_AND_LIST_MODULES = textwrap.dedent(
    """
    import json, sys
    import mlflow

    if sys.argv[1] == "log":
        mlflow.set_experiment("footprint")
        with mlflow.start_run():
            mlflow.log_metric("loss", 0.5)
    print(json.dumps(sorted(sys.modules)))
    """
)
SERVER_SIDE = ("trackledger", "duckdb", "pyarrow", "starlette", "uvicorn")


def test_logging_through_the_plugin_imports_nothing_of_the_server(tmp_path):
    env = plugin_env(free_port(), tmp_path / "spool", TRACKLEDGER_EXIT_FLUSH_S="0")
    loaded = {}
    for mode in ("import", "log"):
        code, out, err = Script(tmp_path / "footprint.py", LOG_AND_LIST_MODULES, [mode], env).finish()
        assert code == 0, err
        loaded[mode] = set(json.loads(out.strip().splitlines()[-1]))
    assert "trackledger_client.store" in loaded["log"]
    added = loaded["log"] - loaded["import"]
    assert sorted(m for m in added if m.split(".")[0] in SERVER_SIDE) == []
