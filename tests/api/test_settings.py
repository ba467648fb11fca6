"""Settings are declared once (``api/settings.py``): the CLI options, the values a command runs with and
the README's tables all follow the declaration."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from trackledger.api.cli import COMMANDS, build_parser
from trackledger.api.settings import EVERY_COMMAND, Settings, options, table_rows

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(heading: str) -> list[str]:
    lines = README.read_text().splitlines()
    start = lines.index(heading) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("#"))
    return lines[start:end]


def parse(command: str, *argv: str, environ: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args([command, *argv])
    return Settings.from_args(command, args, environ or {})


def test_readme_flag_table_is_the_declaration():
    rows = [line for line in readme_section("### Flags and environment") if line.startswith("| `")]
    assert rows == table_rows()


# Commands with actions (``users create``) have a synopsis per action; the arguments each needs.
ACTIONS = {"users": ("create", "list"), "tokens": ("create", "list", "revoke")}
REQUIRED_ARGV = {
    "sql": ["SELECT 1"],
    "import": ["--from", "sqlite:///mlflow.db"],
    "users create": ["NAME"],
    "tokens create": ["--user", "U"],
    "tokens list": ["--user", "U"],
    "tokens revoke": ["ID"],
}


def _action_parser(argv: list[str]):
    """The parser of the last sub-command or action in ``argv``."""
    parser = build_parser()
    for word in argv:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return parser


def test_readme_command_synopses_name_every_option_of_the_parser():
    synopses = {}
    for line in readme_section("## Command line"):
        if found := re.match(r"\| `trackledger (\w+(?: (?:create|list|revoke))?) ([^`]*)` \|", line):
            synopses[found.group(1)] = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", found.group(2)))
    expected = {f"{c} {a}" for c in COMMANDS for a in ACTIONS.get(c, ())} | {
        c for c in COMMANDS if c not in ACTIONS
    }
    assert set(synopses) == expected
    for command, flags in synopses.items():
        argv = [*command.split(), *REQUIRED_ARGV.get(command, [])]
        build_parser().parse_args(argv)
        parser = _action_parser(argv)
        actions = [a for a in parser._actions if a.option_strings and a.dest != "help"]
        for action in actions:
            assert flags & set(action.option_strings), f"README's `{command}` lacks {action.option_strings}"
        known = {flag for action in actions for flag in action.option_strings}
        assert flags <= known, f"README's `{command}` names options it does not take: {flags - known}"


def test_every_setting_belongs_to_known_commands_and_has_its_own_flag_and_variable():
    declared = options()
    assert set(COMMANDS) == EVERY_COMMAND
    assert all(option.commands <= EVERY_COMMAND for _, option in declared)
    assert len({option.flag for _, option in declared}) == len(declared)
    assert len({option.env for _, option in declared}) == len(declared)
    assert all(option.env.startswith("TRACKLEDGER_") for _, option in declared)


def test_flag_then_environment_then_default():
    assert parse("server").port == 5000
    assert parse("server", environ={"TRACKLEDGER_PORT": "5001"}).port == 5001
    assert parse("server", "--port", "5002", environ={"TRACKLEDGER_PORT": "5001"}).port == 5002
    assert parse("server", environ={"TRACKLEDGER_SQL_TIMEOUT": "2.5"}).sql_timeout_s == 2.5
    assert parse("server", environ={"TRACKLEDGER_ACCESS_LOG": "on"}).access_log is True
    assert parse("server", "--no-access-log", environ={"TRACKLEDGER_ACCESS_LOG": "1"}).access_log is False
    assert parse("server", "--access-log").access_log is True


@pytest.mark.parametrize("command", ["server", "events", "rebuild", "sql"])
def test_state_dir_variable_is_honoured_by_every_command_that_takes_it(command):
    argv = ["SELECT 1"] if command == "sql" else []
    settings = parse(
        command, *argv, environ={"TRACKLEDGER_STATE_DIR": "/tmp/state", "TRACKLEDGER_STORE": "s"}
    )
    assert (settings.state_dir, settings.store) == ("/tmp/state", "s")
    assert str(settings.state_path) == "/tmp/state"


def test_a_command_ignores_settings_it_does_not_take():
    assert parse("verify", environ={"TRACKLEDGER_PORT": "not a port"}).port == 5000
    with pytest.raises(SystemExit):
        parse("verify", "--port", "5001")


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("TRACKLEDGER_PORT", "abc", "'abc' is not an integer"),
        ("TRACKLEDGER_PORT", "70000", "not a port number"),
        ("TRACKLEDGER_SQL_MAX_ROWS", "0", "not a positive integer"),
        ("TRACKLEDGER_SQL_TIMEOUT", "nan", "not a positive number"),
        ("TRACKLEDGER_DURABILITY", "never", "choose from fsync, os"),
        ("TRACKLEDGER_ACCESS_LOG", "maybe", "not on or off"),
    ],
)
def test_a_bad_environment_value_names_its_variable(variable, value, reason):
    with pytest.raises(ValueError, match=f"^{variable}='{value}': .*{reason}"):
        parse("server", environ={variable: value})


def test_a_bad_flag_value_says_why(capsys):
    with pytest.raises(SystemExit):
        parse("server", "--port", "99999")
    assert "argument --port: '99999' is not a port number (0-65535)" in capsys.readouterr().err
