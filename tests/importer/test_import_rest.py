"""``trackledger import --from http://...``: the same history read through MLflow's REST API (and
its artifact proxy) answers the mlflow client as the MLflow server does."""

from __future__ import annotations

from tests.api.conftest import ServerProcess
from tests.importer.compare import differences, reads
from tests.importer.conftest import trackledger


def test_imported_over_rest_the_store_answers_as_mlflow_does(mlflow_source, tmp_path):
    store = tmp_path / "data"
    out = trackledger("import", "--from", mlflow_source.url, "--store", str(store))
    assert out.returncode == 0, out.stderr
    again = trackledger("import", "--from", mlflow_source.url, "--store", str(store))
    assert again.returncode == 0, again.stderr
    assert "│ events appended   │        0 │" in again.stdout

    server = ServerProcess(str(store), tmp_path).start()
    try:
        expected = reads(mlflow_source.url, tmp_path)
        got = reads(server.url, tmp_path)
    finally:
        server.stop()
    assert differences(expected, got) == []
    assert expected["artifacts"] and expected["predictions"]


def test_an_unreachable_or_foreign_server_is_a_clear_error(tmp_path):
    from tests.api.conftest import free_port

    out = trackledger("import", "--from", f"http://127.0.0.1:{free_port()}", "--store", str(tmp_path / "d"))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the MLflow server" in lines[0]
    assert not (tmp_path / "d").exists()
