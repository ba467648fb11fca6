"""The layers point down (DESIGN.md): ``ledger`` imports neither ``projections`` nor ``api``,
``projections`` and the importer never import ``api``, and any other installed package (the
logging client, which runs inside training processes) imports none of the three."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = {"trackledger.ledger", "trackledger.projections", "trackledger.api"}
FORBIDDEN = {
    "trackledger.ledger": {"trackledger.projections", "trackledger.api"},
    "trackledger.projections": {"trackledger.api"},
    # ``trackledger import`` makes ledger events from MLflow's schemas: beside the server, not in it.
    "trackledger.importer": {"trackledger.api"},
}


def installed_packages() -> dict[str, Path]:
    """Each top-level package of the ``trackledger`` namespace and its folder in the repository."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in config.items() if name.count(".") == 1}


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved within ``package``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add(package)  # within its own package: never across layers
            elif node.module:
                found.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return found


def crossings(package: str, folder: Path, forbidden: set[str]) -> list[str]:
    return sorted(
        f"{folder.name}/{path.relative_to(folder)} imports {name}"
        for path in folder.rglob("*.py")
        for name in imports(path, package)
        if any(name == layer or name.startswith(layer + ".") for layer in forbidden)
    )


def test_the_three_layers_are_installed_where_the_rules_expect_them():
    assert set(installed_packages()) >= SERVER


def test_layers_only_point_down():
    problems = []
    for package, folder in installed_packages().items():
        forbidden = FORBIDDEN.get(package, set() if package in SERVER else SERVER)
        problems += crossings(package, folder, forbidden)
    assert not problems, "\n".join(problems)


def test_the_rule_sees_a_crossing(tmp_path):
    (tmp_path / "bad.py").write_text("from trackledger.api.http import json_response\nimport os\n")
    assert crossings("trackledger.projections", tmp_path, {"trackledger.api"}) == [
        f"{tmp_path.name}/bad.py imports trackledger.api.http",
        f"{tmp_path.name}/bad.py imports trackledger.api.http.json_response",
    ]


def test_the_logging_client_imports_nothing_of_trackledger():
    """Its own distribution (``client/``), loaded by training processes: not even the namespace."""
    client = ROOT / "client" / "trackledger_client"
    assert any(client.rglob("*.py"))
    assert crossings("trackledger_client", client, {"trackledger"}) == []
