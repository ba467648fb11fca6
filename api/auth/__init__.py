"""Accounts and permissions: who a request is (``authn``), what they may do (``accounts``,
``guard``), MLflow's auth REST API (``routes``), and the hashes behind it all (``secrets``).

Off unless the server runs with ``--auth``: then ``ServerContext.auth`` holds an ``Accounts``.
"""
