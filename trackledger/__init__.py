"""trackledger: an MLflow-compatible experiment-tracking server on an append-only Parquet ledger.

Installed, the repository's three layers live here: ``trackledger.ledger``, ``trackledger.projections``
and ``trackledger.api`` (see DESIGN.md). This module imports none of them, so importing a light part
of the distribution costs nothing.
"""
