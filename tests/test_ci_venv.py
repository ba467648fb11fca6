"""``.ci/venv.py``, the first step of the README's two commands: on a Python without ``ensurepip``
(Debian's and Ubuntu's without the python3-venv package) it still makes ./.venv with pip in it,
taking pip's wheel from the package index and checking its sha256.

A loopback index serves the pip wheel CPython bundles with ensurepip; this interpreter, run under a
prefix whose stdlib lacks ``ensurepip``, fails ``python3 -m venv`` as Debian's does."""

from __future__ import annotations

import glob
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "venv.py"
BUNDLED = sorted(
    glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip", "_bundled", "pip-*.whl"))
)


def serve_index(wheel: Path, as_json: bool, sha256: str):
    """A one-package simple index on loopback: /simple/pip/ lists the wheel, /files/ serves it."""

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/simple/pip/":
                if as_json:
                    files = [
                        {
                            "filename": wheel.name,
                            "url": f"../../files/{wheel.name}",
                            "hashes": {"sha256": sha256},
                        }
                    ]
                    body, kind = json.dumps({"files": files}).encode(), "application/vnd.pypi.simple.v1+json"
                else:
                    link = f'<a href="/files/{wheel.name}#sha256={sha256}">{wheel.name}</a>'
                    body, kind = f"<html><body>{link}</body></html>".encode(), "text/html"
            elif self.path == f"/files/{wheel.name}":
                body, kind = wheel.read_bytes(), "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def python_without_ensurepip(root: Path) -> Path:
    """This interpreter under another prefix whose stdlib lacks ``ensurepip``: symlinks to every
    other stdlib entry, as a Debian Python without python3-venv has them."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    fake_stdlib = root / "lib" / stdlib.name
    fake_stdlib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name != "ensurepip":
            (fake_stdlib / entry.name).symlink_to(entry)
    (root / "bin").mkdir()
    python = root / "bin" / Path(sys._base_executable).name
    shutil.copy2(Path(sys._base_executable).resolve(), python)
    return python


def run_without_ensurepip(tmp_path: Path, index_url: str) -> subprocess.CompletedProcess:
    python = python_without_ensurepip(tmp_path / "debian-python")
    assert subprocess.run([str(python), "-c", "import ensurepip"], capture_output=True).returncode != 0
    env = {**os.environ, "PIP_INDEX_URL": index_url}
    run = [str(python), str(SCRIPT), str(tmp_path / "venv")]
    return subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
@pytest.mark.skipif(not BUNDLED, reason="this Python ships no bundled pip wheel to serve")
@pytest.mark.parametrize("as_json", [False, True], ids=["html-index", "json-index"])
def test_a_python_without_ensurepip_still_gets_a_venv_with_pip(tmp_path, as_json):
    wheel = Path(BUNDLED[-1])
    index = serve_index(wheel, as_json, hashlib.sha256(wheel.read_bytes()).hexdigest())
    try:
        done = run_without_ensurepip(tmp_path, f"http://127.0.0.1:{index.server_port}/simple")
    finally:
        index.shutdown()
    assert done.returncode == 0, done.stderr
    assert "no ensurepip" in done.stdout
    pip = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True
    )
    assert pip.returncode == 0 and str(tmp_path / "venv") in pip.stdout


@pytest.mark.e2e
@pytest.mark.skipif(not BUNDLED, reason="this Python ships no bundled pip wheel to serve")
def test_a_wheel_that_does_not_match_the_index_digest_is_not_installed(tmp_path):
    index = serve_index(Path(BUNDLED[-1]), as_json=False, sha256="0" * 64)
    try:
        done = run_without_ensurepip(tmp_path, f"http://127.0.0.1:{index.server_port}/simple")
    finally:
        index.shutdown()
    assert done.returncode != 0
    assert "does not match the index's sha256" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "venv" / "bin" / "pip").exists()


@pytest.mark.e2e
def test_an_existing_venv_with_pip_is_reused_as_it_is(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    marker = tmp_path / "venv" / "kept"
    marker.write_text("")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "venv")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and marker.exists()


def test_ci_runs_the_readmes_test_command_and_both_commands_start_with_the_venv_step():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    server_command, test_command = (line.split("  #")[0].strip() for line in block.strip().splitlines())
    assert server_command.startswith("python3 .ci/venv.py && ") and test_command.startswith(
        "python3 .ci/venv.py && "
    )
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
