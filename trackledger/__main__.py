"""``python -m trackledger``: the same command line as the ``trackledger`` console script."""

from trackledger.api.cli import main

main()
