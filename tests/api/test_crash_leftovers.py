"""What a kill -9 leaves behind is cleaned up when the server starts again."""

from __future__ import annotations

import pytest

from tests.api.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def test_interrupted_upload_temp_files_are_removed_at_start(tmp_path):
    artifacts = tmp_path / "data" / "artifacts" / "0" / ("a" * 32) / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / ".tl-upload-0123456789abcdef").write_bytes(b"x" * 1000)  # as a kill mid-upload leaves it
    (artifacts / "model.pkl").write_bytes(b"kept")
    (tmp_path / "data" / "artifacts" / ".tl-upload-top").write_bytes(b"y")
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        assert sorted(p.name for p in (tmp_path / "data" / "artifacts").rglob("*") if p.is_file()) == [
            "model.pkl"
        ]
        assert "removed 2 temporary files of uploads interrupted by a crash" in server.read_log()
    finally:
        assert server.stop() == 0
