"""The client's settings: sizes, a bad value names its variable, one default spool per server."""

from __future__ import annotations

import pytest
from trackledger_client.settings import Settings, default_spool_dir, parse_size, server_url


def test_sizes_take_bytes_and_binary_suffixes():
    assert parse_size("1073741824") == parse_size("1G") == parse_size("1GiB") == 1 << 30
    assert parse_size("512M") == 512 << 20
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("TRACKLEDGER_SPOOL_BUDGET", "lots")
    with pytest.raises(ValueError, match="TRACKLEDGER_SPOOL_BUDGET='lots'"):
        Settings.from_env("http://127.0.0.1:5000")
    monkeypatch.setenv("TRACKLEDGER_SPOOL_BUDGET", "1G")
    monkeypatch.setenv("TRACKLEDGER_EXIT_FLUSH_S", "-1")
    with pytest.raises(ValueError, match="TRACKLEDGER_EXIT_FLUSH_S='-1'"):
        Settings.from_env("http://127.0.0.1:5000")


def test_each_server_has_its_own_default_spool(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_spool_dir("http://host:5000") == tmp_path / "trackledger" / "spool" / "host-5000"
    assert default_spool_dir("https://host") == tmp_path / "trackledger" / "spool" / "host-443"
    assert server_url("trackledger+https://host:5000/") == "https://host:5000"
    with pytest.raises(ValueError, match="not a trackledger tracking URI"):
        server_url("http://host:5000")
