"""trackledger's mlflow plugin: ``MLFLOW_TRACKING_URI=trackledger+http://host:5000``.

Writes go to a durable local spool and return at once; a background thread ships them to the
server with an ``Idempotency-Key`` each, so nothing is lost when the server is down and nothing
arrives twice. This package imports nothing of the server (it runs inside training processes).
"""
