"""The DuckDB tables of the read models: their DDL, in dependency-free order.

Every table here is documented column by column in README.md (a test checks it).
Primary keys exist only on tables that are updated in place; the metric history is
append-only and unindexed so that bulk loads stay fast.
"""

from __future__ import annotations

import duckdb

TABLES: dict[str, str] = {
    "experiments": """
        experiment_id VARCHAR PRIMARY KEY, name VARCHAR, artifact_location VARCHAR,
        lifecycle_stage VARCHAR, creation_time BIGINT, last_update_time BIGINT, created_by VARCHAR""",
    "experiment_tags": "experiment_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (experiment_id, key)",
    # run_json is stored uncompressed: a page of search results reads 1,000 of them scattered
    # over the table, and decompressing their blocks cost a quarter of the search at 100k runs.
    "runs": """
        run_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, run_name VARCHAR, user_id VARCHAR,
        status VARCHAR, start_time BIGINT, end_time BIGINT, artifact_uri VARCHAR,
        lifecycle_stage VARCHAR, created_by VARCHAR, run_json VARCHAR USING COMPRESSION uncompressed""",
    "params": "run_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (run_id, key)",
    "run_tags": "run_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (run_id, key)",
    "metrics": """
        run_id VARCHAR, key VARCHAR, value DOUBLE, timestamp BIGINT, step BIGINT,
        model_id VARCHAR, dataset_name VARCHAR, dataset_digest VARCHAR, seq BIGINT""",
    "latest_metrics": """
        run_id VARCHAR, key VARCHAR, value DOUBLE, timestamp BIGINT, step BIGINT,
        PRIMARY KEY (run_id, key)""",
    "dataset_inputs": """
        run_id VARCHAR, name VARCHAR, digest VARCHAR, context VARCHAR, source_type VARCHAR,
        source VARCHAR, schema VARCHAR, profile VARCHAR,
        tags STRUCT(key VARCHAR, value VARCHAR)[], seq BIGINT""",
    "model_inputs": "run_id VARCHAR, model_id VARCHAR, step BIGINT, seq BIGINT",
    "model_outputs": "run_id VARCHAR, model_id VARCHAR, step BIGINT, seq BIGINT",
    "logged_models": """
        model_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, name VARCHAR, artifact_location VARCHAR,
        creation_timestamp_ms BIGINT, last_updated_timestamp_ms BIGINT, status VARCHAR,
        model_type VARCHAR, source_run_id VARCHAR, lifecycle_stage VARCHAR, created_by VARCHAR""",
    "logged_model_tags": "model_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (model_id, key)",
    "logged_model_params": "model_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (model_id, key)",
    "logged_model_metrics": """
        model_id VARCHAR, run_id VARCHAR, key VARCHAR, value DOUBLE, timestamp BIGINT, step BIGINT,
        dataset_name VARCHAR, dataset_digest VARCHAR, seq BIGINT""",
    # The registry is keyed by registered_model_id, which survives renames (see ledger.events).
    "registered_models": """
        registered_model_id VARCHAR PRIMARY KEY, name VARCHAR, description VARCHAR,
        creation_timestamp BIGINT, last_updated_timestamp BIGINT, created_by VARCHAR""",
    "registered_model_tags": """
        registered_model_id VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (registered_model_id, key)""",
    "model_versions": """
        registered_model_id VARCHAR, version BIGINT, source VARCHAR, run_id VARCHAR, model_id VARCHAR,
        description VARCHAR, current_stage VARCHAR, creation_timestamp BIGINT,
        last_updated_timestamp BIGINT, created_by VARCHAR, deleted BOOLEAN,
        PRIMARY KEY (registered_model_id, version)""",
    "model_version_tags": """
        registered_model_id VARCHAR, version BIGINT, key VARCHAR, value VARCHAR,
        PRIMARY KEY (registered_model_id, version, key)""",
    "registered_model_aliases": """
        registered_model_id VARCHAR, alias VARCHAR, version BIGINT,
        PRIMARY KEY (registered_model_id, alias)""",
    # secret_sealed (encrypted with the server's key) is for the deliverer: ad-hoc SQL never sees it.
    "webhooks": """
        webhook_id VARCHAR PRIMARY KEY, name VARCHAR, description VARCHAR, url VARCHAR, events VARCHAR[],
        status VARCHAR, filter_experiment_ids VARCHAR[], filter_tag_key VARCHAR, secret_sealed VARCHAR,
        creation_timestamp BIGINT, last_updated_timestamp BIGINT, created_by VARCHAR, created_seq BIGINT""",
    "artifacts": """
        path VARCHAR PRIMARY KEY, experiment_id VARCHAR, run_id VARCHAR, model_id VARCHAR,
        size BIGINT, sha256 VARCHAR, actor VARCHAR, ts BIGINT, seq BIGINT""",
    "events": """
        writer VARCHAR, seq BIGINT, id VARCHAR, ts BIGINT, type VARCHAR, actor VARCHAR,
        actor_verified BOOLEAN, remote_addr VARCHAR, user_agent VARCHAR, experiment_id VARCHAR,
        run_id VARCHAR, model_id VARCHAR, summary VARCHAR, registered_model_id VARCHAR, version BIGINT,
        claimed_actor VARCHAR""",
    # Accounts (see apply_accounts). No hash is in these three: credentials holds them.
    "users": """
        username VARCHAR PRIMARY KEY, is_admin BOOLEAN, created_by VARCHAR, creation_time BIGINT,
        last_update_time BIGINT""",
    "tokens": """
        token_id VARCHAR PRIMARY KEY, username VARCHAR, description VARCHAR, created_by VARCHAR,
        creation_time BIGINT, expires_at BIGINT, revoked BOOLEAN""",
    "permissions": """
        username VARCHAR, resource_type VARCHAR, resource_id VARCHAR, permission VARCHAR,
        granted_by VARCHAR, ts BIGINT, PRIMARY KEY (username, resource_type, resource_id)""",
    "credentials": "kind VARCHAR, id VARCHAR, username VARCHAR, hash VARCHAR, PRIMARY KEY (kind, id)",
    "account_events": """
        writer VARCHAR, seq BIGINT, ts BIGINT, type VARCHAR, actor VARCHAR, username VARCHAR,
        password_hash VARCHAR, is_admin BOOLEAN, token_id VARCHAR, token_hash VARCHAR, expires_at BIGINT,
        description VARCHAR, resource_type VARCHAR, resource_id VARCHAR, permission VARCHAR""",
    "checkpoints": "writer VARCHAR PRIMARY KEY, last_seq BIGINT",
    "derivation": "digest VARCHAR",
}

# Tables holding password and token hashes: the server reads them, ad-hoc SQL never sees them.
PRIVATE_TABLES = frozenset({"credentials", "account_events"})


# Columns the ad-hoc SQL sandbox leaves out of its snapshots.
PRIVATE_COLUMNS: dict[str, tuple[str, ...]] = {"webhooks": ("secret_sealed",)}


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


def open_tables(con: duckdb.DuckDBPyConnection, digest: str) -> bool:
    """Create the tables; when they hold state derived by other code (another version, whose
    ``digest`` differs, or one from before digests were kept), empty them first, so that catching
    up derives them again from the ledger. Returns whether they were emptied."""
    create_tables(con)
    found = con.execute("SELECT digest FROM derivation").fetchall()
    if found == [(digest,)]:
        return False
    stale = bool(found) or con.execute("SELECT count(*) FROM checkpoints").fetchall() != [(0,)]
    reset_tables(con, digest)
    return stale


def reset_tables(con: duckdb.DuckDBPyConnection, digest: str) -> None:
    """Drop every table and create it empty, derived by the code of ``digest``."""
    drop_tables(con)
    create_tables(con)
    con.execute("INSERT INTO derivation VALUES (?)", [digest])


def drop_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name in TABLES:
        con.execute(f"DROP TABLE IF EXISTS {name}")
