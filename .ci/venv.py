"""Create (or reuse) the virtual environment ./.venv with pip in it, with nothing but the stdlib.

The README's two commands start with this so that they work on any Linux Python 3.11+, including a
Debian or Ubuntu system Python without the ``python3-venv`` package: there ``python3 -m venv``
stops because ``ensurepip`` is missing, so the environment is made without pip and pip is installed
into it from its wheel on the package index (``PIP_INDEX_URL`` if set, else PyPI), checked against
the sha256 the index publishes.

    python3 .ci/venv.py [DIR]      # DIR defaults to .venv
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_INDEX = "https://pypi.org/simple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
FINAL_WHEEL = re.compile(r"^pip-(\d+(?:\.\d+)*)-py3-none-any\.whl$")  # no pre-releases


def has_pip(python: Path) -> bool:
    probe = [str(python), "-m", "pip", "--version"]
    return python.exists() and subprocess.run(probe, capture_output=True).returncode == 0


class _Links(html.parser.HTMLParser):
    """The file links of a PEP 503 simple page: (file name, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None and data.strip():
            self.files.append((data.strip(), self._href))
            self._href = None


def pip_wheel_links(index: str) -> list[tuple[str, str, str]]:
    """(file name, absolute url, sha256) of every pip wheel the index lists, JSON or HTML."""
    page = index.rstrip("/") + "/pip/"
    request = urllib.request.Request(page, headers={"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        is_json = response.headers.get_content_type() == SIMPLE_JSON
    if is_json:
        entries = [
            (f["filename"], f["url"], f.get("hashes", {}).get("sha256", ""))
            for f in json.loads(body)["files"]
            if not f.get("yanked")
        ]
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        entries = []
        for name, href in parser.files:
            _, _, fragment = href.partition("#sha256=")
            entries.append((name, href.split("#")[0], fragment))
    return [(name, urllib.parse.urljoin(page, url), digest) for name, url, digest in entries]


def newest_pip_wheel(index: str) -> tuple[str, str, str]:
    wheels = [entry for entry in pip_wheel_links(index) if FINAL_WHEEL.match(entry[0])]
    if not wheels:
        raise SystemExit(f"venv: no pip wheel found at {index}/pip/")

    def version(entry):
        return tuple(int(part) for part in FINAL_WHEEL.match(entry[0]).group(1).split("."))

    return max(wheels, key=version)


def install_pip(python: Path, index: str) -> None:
    name, url, sha256 = newest_pip_wheel(index)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(tmp) / name
        with urllib.request.urlopen(url, timeout=300) as response:
            wheel.write_bytes(response.read())
        if not sha256 or hashlib.sha256(wheel.read_bytes()).hexdigest() != sha256:
            raise SystemExit(f"venv: {name} from {url} does not match the index's sha256; not installed")
        # A pip wheel runs pip from inside itself: it installs itself into the new environment.
        run = [str(python), f"{wheel}/pip", "install", "--quiet", "--no-index", str(wheel)]
        subprocess.run(run, check=True)


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv")
    python = target / "bin" / "python"
    if has_pip(python):
        return 0
    made = subprocess.run([sys.executable, "-m", "venv", str(target)], capture_output=True, text=True)
    if made.returncode == 0 and has_pip(python):
        return 0
    index = os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    print(f"venv: this Python has no ensurepip (python3-venv); installing pip into {target} from {index}")
    bare = [sys.executable, "-m", "venv", "--clear", "--without-pip", str(target)]
    made = subprocess.run(bare, capture_output=True, text=True)
    if made.returncode != 0:
        lines = (made.stderr or made.stdout).strip().splitlines() or ["no message"]
        raise SystemExit(f"venv: could not create {target}: {lines[-1]}")
    install_pip(python, index)
    if not has_pip(python):
        raise SystemExit(f"venv: pip did not install into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
