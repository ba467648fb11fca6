"""Every setting, declared once: its name, flag, environment variable, default and meaning.

``Settings`` is the declaration. Each field made with ``setting(...)`` says its flag, its
environment variable, its help and the sub-commands that take it; from that come the options of
those sub-commands (``add_options``), the values a command runs with (``Settings.from_args``: the
flag, else the environment variable, else the default) and the rows of the README's flag table
(``table_rows``, held to the README by a test). Adding a setting is adding one field here.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER, VERIFY, EVENTS, REBUILD, SQL, IMPORT = "server", "verify", "events", "rebuild", "sql", "import"
SYNC, USERS, TOKENS = "sync", "users", "tokens"
EVERY_COMMAND = frozenset({SERVER, VERIFY, EVENTS, REBUILD, SQL, IMPORT, SYNC, USERS, TOKENS})
LEDGER_COMMANDS = EVERY_COMMAND - {SYNC}  # sync ships a logging client's spool: it reads no store
STATE_COMMANDS = frozenset({SERVER, EVENTS, REBUILD, SQL, IMPORT, USERS, TOKENS})


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def storage_options_for(url: str) -> dict[str, Any] | None:
    """s3fs options from the environment: AWS_ENDPOINT_URL selects an S3-compatible server."""
    if not url.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def default_state_dir(store: str) -> Path:
    """Local stores keep their state next to the data; remote ones under ./.trackledger-state/."""
    if not is_remote(store):
        return Path(store.removeprefix("file://")) / ".state"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", store.split("://", 1)[1]).strip("_")[:80]
    digest = hashlib.sha256(store.encode()).hexdigest()[:8]
    return Path(".trackledger-state") / f"{slug}-{digest}"


def default_artifacts(store: str) -> str:
    return store.rstrip("/") + "/artifacts"


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise ValueError(f"{text!r} is not a positive integer")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise ValueError(f"{text!r} is not a positive number")
    return value


def port_number(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= 65535:
        raise ValueError(f"{text!r} is not a port number (0-65535)")
    return value


def host_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of Host patterns (``a.example,10.0.*,*``); empty entries are dropped."""
    hosts = tuple(part.strip() for part in text.split(",") if part.strip())
    for host in hosts:
        if any(c.isspace() or c in "/@?#" for c in host):
            raise ValueError(f"{host!r} is not a host name, address or pattern")
    return hosts


def switch(text: str) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not on or off (1/0, true/false, yes/no, on/off)")


@dataclass(frozen=True)
class Option:
    """How a setting is given: ``flag`` on the command line, ``env`` in the environment."""

    flag: str
    env: str
    help: str
    commands: frozenset[str]
    metavar: str | None = None
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    shown_default: str | None = None  # for defaults derived from other settings

    @property
    def is_switch(self) -> bool:
        return self.parse is switch

    @property
    def usage(self) -> str:
        """The flag as the README shows it: ``--port P``, ``--durability fsync|os``, ``--access-log``."""
        if self.is_switch:
            return self.flag
        return f"{self.flag} {'|'.join(self.choices) if self.choices else self.metavar}"


def setting(default: Any, **option: Any) -> Any:
    return field(default=default, metadata={"option": Option(**option)})


@dataclass(frozen=True)
class Settings:
    store: str = setting(
        "./trackledger-data",
        flag="--store",
        env="TRACKLEDGER_STORE",
        metavar="URL",
        help="ledger store: a path, `file://`, `memory://` or `s3://bucket/prefix`",
        commands=LEDGER_COMMANDS,
    )
    artifacts: str | None = setting(
        None,
        flag="--artifacts",
        env="TRACKLEDGER_ARTIFACTS",
        metavar="URL",
        help="where artifact files go (any fsspec URL, S3 included)",
        commands=frozenset({SERVER, IMPORT}),
        shown_default="<store>/artifacts",
    )
    state_dir: str | None = setting(
        None,
        flag="--state-dir",
        env="TRACKLEDGER_STATE_DIR",
        metavar="PATH",
        help="local directory of the server's write-ahead log and DuckDB projection (for a remote store: "
        "`./.trackledger-state/<bucket_prefix>-<hash>`); `events` and `sql` read its WAL tail when given",
        commands=STATE_COMMANDS,
        shown_default="<store>/.state",
    )
    host: str = setting(
        "127.0.0.1",
        flag="--host",
        env="TRACKLEDGER_HOST",
        metavar="H",
        help="listen address",
        commands=frozenset({SERVER}),
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        flag="--allowed-hosts",
        env="TRACKLEDGER_ALLOWED_HOSTS",
        metavar="HOSTS",
        parse=host_list,
        help="comma-separated Host headers the server answers besides loopback names (`localhost`, "
        "`127.0.0.1`, `[::1]`, any port) and a specific `--host`: `name` (any port), `name:port`, `*` "
        "wildcards (`*.corp.example`, `10.0.*`), or `*` for any; another Host gets 403 (DNS rebinding)",
        commands=frozenset({SERVER}),
        shown_default="loopback",
    )
    port: int = setting(
        5000,
        flag="--port",
        env="TRACKLEDGER_PORT",
        metavar="P",
        parse=port_number,
        help="listen port (0: any free port)",
        commands=frozenset({SERVER}),
    )
    durability: str = setting(
        "fsync",
        flag="--durability",
        env="TRACKLEDGER_DURABILITY",
        choices=("fsync", "os"),
        help="`fsync`: a write is answered only after the WAL is synced to disk; `os`: once the OS has it "
        "(survives a process crash, not a power cut)",
        commands=frozenset({SERVER}),
    )
    sql_max_rows: int = setting(
        10_000,
        flag="--sql-max-rows",
        env="TRACKLEDGER_SQL_MAX_ROWS",
        metavar="N",
        parse=positive_int,
        help="row cap of `POST /api/sql`",
        commands=frozenset({SERVER}),
    )
    sql_timeout_s: float = setting(
        5.0,
        flag="--sql-timeout",
        env="TRACKLEDGER_SQL_TIMEOUT",
        metavar="S",
        parse=positive_float,
        help="time cap of `POST /api/sql`, seconds",
        commands=frozenset({SERVER}),
    )
    sql_max_bytes: int = setting(
        32 * 1024 * 1024,
        flag="--sql-max-bytes",
        env="TRACKLEDGER_SQL_MAX_BYTES",
        metavar="N",
        parse=positive_int,
        help="answer size cap of `POST /api/sql`, bytes as sent (Parquet: of its Arrow data); "
        "the answer is cut and says so",
        commands=frozenset({SERVER}),
    )
    sql_memory_mb: int = setting(
        256,
        flag="--sql-memory",
        env="TRACKLEDGER_SQL_MEMORY",
        metavar="MB",
        parse=positive_int,
        help="DuckDB memory cap of one `POST /api/sql` query, MB (past it: a 400 naming the cap)",
        commands=frozenset({SERVER}),
    )
    sql_threads: int = setting(
        1,
        flag="--sql-threads",
        env="TRACKLEDGER_SQL_THREADS",
        metavar="N",
        parse=positive_int,
        help="DuckDB threads of one `POST /api/sql` query",
        commands=frozenset({SERVER}),
    )
    sql_max_concurrent: int = setting(
        2,
        flag="--sql-max-concurrent",
        env="TRACKLEDGER_SQL_MAX_CONCURRENT",
        metavar="N",
        parse=positive_int,
        help="`POST /api/sql` queries running at once; one more is answered 429",
        commands=frozenset({SERVER}),
    )
    max_body_mb: int = setting(
        16,
        flag="--max-body-mb",
        env="TRACKLEDGER_MAX_BODY_MB",
        metavar="MB",
        parse=positive_int,
        help="cap of a request body, MB: refused (413) while read; artifact uploads stream, uncapped",
        commands=frozenset({SERVER}),
    )
    header_timeout_s: float = setting(
        10.0,
        flag="--header-timeout",
        env="TRACKLEDGER_HEADER_TIMEOUT",
        metavar="S",
        parse=positive_float,
        help="seconds a connection has to send a request's headers (idle or stalled ones are closed)",
        commands=frozenset({SERVER}),
    )
    keep_alive_s: float = setting(
        75.0,
        flag="--keep-alive",
        env="TRACKLEDGER_KEEP_ALIVE",
        metavar="S",
        parse=positive_float,
        help="seconds an idle keep-alive connection stays open after its last answer",
        commands=frozenset({SERVER}),
    )
    log_level: str = setting(
        "info",
        flag="--log-level",
        env="TRACKLEDGER_LOG_LEVEL",
        choices=("debug", "info", "warning", "error"),
        help="the server's log level",
        commands=frozenset({SERVER}),
    )
    access_log: bool = setting(
        False,
        flag="--access-log",
        env="TRACKLEDGER_ACCESS_LOG",
        parse=switch,
        help="log one line per request (client, method, path, status); `--no-access-log` turns it off",
        commands=frozenset({SERVER}),
        shown_default="off",
    )
    webhook_allow_private: bool = setting(
        False,
        flag="--webhook-allow-private",
        env="TRACKLEDGER_WEBHOOK_ALLOW_PRIVATE",
        parse=switch,
        help="let webhooks reach loopback, private and link-local addresses (refused by default: SSRF)",
        commands=frozenset({SERVER}),
        shown_default="off",
    )
    webhook_max_age_s: float = setting(
        24 * 3600.0,
        flag="--webhook-max-age",
        env="TRACKLEDGER_WEBHOOK_MAX_AGE",
        metavar="S",
        parse=positive_float,
        help="seconds after its event when a webhook delivery still failing is marked failed",
        commands=frozenset({SERVER}),
    )
    webhook_retry_max_s: float = setting(
        600.0,
        flag="--webhook-retry-max",
        env="TRACKLEDGER_WEBHOOK_RETRY_MAX",
        metavar="S",
        parse=positive_float,
        help="longest pause between two attempts of a webhook delivery, seconds (`Retry-After` may ask more)",
        commands=frozenset({SERVER}),
    )
    webhook_timeout_s: float = setting(
        10.0,
        flag="--webhook-timeout",
        env="TRACKLEDGER_WEBHOOK_TIMEOUT",
        metavar="S",
        parse=positive_float,
        help="seconds a webhook delivery attempt waits to connect, and for each read of the answer",
        commands=frozenset({SERVER}),
    )
    auth: bool = setting(
        False,
        flag="--auth",
        env="TRACKLEDGER_AUTH",
        parse=switch,
        help="require a user for every request (HTTP Basic, Bearer token or the web sign-in) and enforce "
        "permissions; the first admin: `trackledger users create NAME --admin`",
        commands=frozenset({SERVER}),
        shown_default="off",
    )
    default_permission: str = setting(
        "READ",
        flag="--default-permission",
        env="TRACKLEDGER_DEFAULT_PERMISSION",
        choices=("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"),
        help="with `--auth`: what a user may do on an experiment or registered model when nobody granted "
        "them anything on it (MLflow's default is READ too)",
        commands=frozenset({SERVER}),
    )
    insecure_no_auth: bool = setting(
        False,
        flag="--insecure-no-auth",
        env="TRACKLEDGER_INSECURE_NO_AUTH",
        parse=switch,
        help="listen on a non-loopback `--host` without `--auth` (refused otherwise): anyone who reaches "
        "the port may read, change and delete everything",
        commands=frozenset({SERVER}),
        shown_default="off",
    )
    # Not a setting of the command line: tests and embedders pass s3fs options directly.
    storage_options: dict[str, Any] | None = None

    @property
    def artifacts_url(self) -> str:
        return self.artifacts or default_artifacts(self.store)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else default_state_dir(self.store)

    @property
    def store_options(self) -> dict[str, Any] | None:
        return self.storage_options if self.storage_options is not None else storage_options_for(self.store)

    @classmethod
    def from_args(cls, command: str, args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
        """The settings ``command`` takes: its flag if given, else its environment variable, else the
        default. A bad environment value raises ValueError naming the variable."""
        values = {}
        for name, option in options(command):
            given = getattr(args, name, None)
            if given is None and environ.get(option.env) is not None:
                text = environ[option.env]
                try:
                    given = option.parse(text)
                except ValueError as exc:
                    raise ValueError(f"{option.env}={text!r}: {exc}") from None
                if option.choices and given not in option.choices:
                    raise ValueError(f"{option.env}={text!r}: choose from {', '.join(option.choices)}")
            if given is not None:
                values[name] = given
        return cls(**values)


def options(command: str | None = None) -> list[tuple[str, Option]]:
    """(field name, option) of every declared setting, or of those ``command`` takes, in order."""
    return [
        (f.name, f.metadata["option"])
        for f in dataclasses.fields(Settings)
        if "option" in f.metadata and (command is None or command in f.metadata["option"].commands)
    ]


def default_text(name: str, option: Option) -> str:
    if option.shown_default is not None:
        return option.shown_default
    return str(next(f.default for f in dataclasses.fields(Settings) if f.name == name))


def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options of the settings ``command`` takes; an option not given stays None (see from_args)."""
    for name, option in options(command):
        shown = f"{option.help} (default: {default_text(name, option)}; env {option.env})"
        help_text = shown.replace("`", "").replace("%", "%%")
        if option.is_switch:
            parser.add_argument(option.flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(
                option.flag,
                dest=name,
                metavar=option.metavar,
                type=_named(option.parse),
                choices=option.choices,
                help=help_text,
            )


def _named(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse reports a ValueError of ``type`` as 'invalid <name> value'; keep the parser's own reason."""
    if parse is str:
        return str

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def table_rows() -> list[str]:
    """The README's flag table, one Markdown row per setting."""
    rows = []
    for name, option in options():
        usage = option.usage.replace("|", "\\|")
        default = default_text(name, option)
        taken_by = "all" if option.commands == EVERY_COMMAND else ", ".join(sorted(option.commands))
        rows.append(f"| `{usage}` | `{option.env}` | `{default}` | {taken_by} | {option.help} |")
    return rows
