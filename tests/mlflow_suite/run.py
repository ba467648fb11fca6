"""Run MLflow's own REST-tracking tests against trackledger.

    python tests/mlflow_suite/run.py /path/to/mlflow-checkout [pytest args ...]

MLflow's server tests are not in its package on PyPI, so this takes an MLflow source checkout
(tested with commit a89bed6 of 2026-04-29 and the mlflow 3.17.2 client). It copies the checkout's
``tests/`` and ``pyproject.toml`` (pytest's configuration) into a temporary folder, rebinds the
server-start helpers (see ``trackledger_servers.py``) and nothing else, and runs the three modules
that test a tracking server: ``test_rest_tracking.py``, ``test_model_registry.py`` and
``test_mlflow_artifacts.py``. The interpreter running this script must have trackledger (with its
``test`` extra) and the few test-only packages MLflow's conftest imports; a missing one is named.
CI does not run this: nothing may be downloaded at test time.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MODULES = (
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
    "tests/tracking/test_mlflow_artifacts.py",
)
# Imported by MLflow's tests/conftest.py or the three modules, beyond trackledger's test extra.
NEEDED = {"pytest_asyncio": "pytest-asyncio", "flask_wtf": "flask-wtf", "PIL": "pillow"}
REBIND = {
    "tests/tracking/integration_test_utils.py": "ServerThread, _init_server",
    "tests/tracking/test_mlflow_artifacts.py": "_launch_server",
}


def prepare(checkout: Path, into: Path) -> None:
    if not (checkout / "tests" / "tracking" / "integration_test_utils.py").is_file():
        sys.exit(f"run.py: {checkout} is not an MLflow source checkout (no tests/tracking/)")
    shutil.copytree(checkout / "tests", into / "tests")
    shutil.copy2(checkout / "pyproject.toml", into / "pyproject.toml")
    shutil.copy2(Path(__file__).with_name("trackledger_servers.py"), into / "tests/tracking")
    for module, names in REBIND.items():
        with open(into / module, "a") as f:
            f.write(f"\n\nfrom tests.tracking.trackledger_servers import {names}  # noqa: E402, F401\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="an MLflow source checkout")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed on to pytest")
    args = parser.parse_args()
    missing = [pkg for module, pkg in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"run.py: install {' '.join(missing)} first (pip install {' '.join(missing)})")
    with tempfile.TemporaryDirectory(prefix="mlflow-suite-") as tmp:
        root = Path(tmp)
        prepare(args.checkout.resolve(), root)
        cmd = [sys.executable, "-m", "pytest", *MODULES, "-p", "no:cacheprovider", "-q", *args.pytest_args]
        return subprocess.call(cmd, cwd=root)


if __name__ == "__main__":
    sys.exit(main())
