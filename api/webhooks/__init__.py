"""Webhooks delivered from the ledger: MLflow's webhook API, its registry events and trackledger's
run and model events, each webhook driven by a durable cursor over the ledger's sequence."""
