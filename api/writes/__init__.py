"""The write side, one request at a time.

An HTTP handler (``api/<entity>.py``) parses and checks the request's shape, then hands it to
``WriteService.commit_on_loop`` or ``commit_off_loop`` (``service``) with the function of this
package's entity module that decides it: ``experiments``, ``runs``, ``run_logging``,
``logged_models``, ``registered_models``, ``model_versions``, ``artifacts``, ``webhooks``,
``accounts``. Under
the write lock, that function checks the request against ``WriteIndex`` (``write_index``: the
entities that exist, in memory) and returns its events, built with the ``Envelope``
(``envelope``) the service gives it, or raises an MlflowError. The service stages the events in
the ledger's WAL, applies them to the index, submits them to the projection, and returns once the
WAL is synced.
"""

from trackledger.api.writes import (
    accounts,
    artifacts,
    experiments,
    logged_models,
    model_versions,
    registered_models,
    run_logging,
    runs,
    webhooks,
)

__all__ = [
    "accounts",
    "artifacts",
    "experiments",
    "logged_models",
    "model_versions",
    "registered_models",
    "run_logging",
    "runs",
    "webhooks",
]
