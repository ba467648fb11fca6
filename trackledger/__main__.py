"""``python -m trackledger``: the same command line as the ``trackledger`` console script."""

from trackledger.api.cli import main

if __name__ == "__main__":  # not when a spawned process (the import's point reader) imports it
    main()
