"""``python -m feedserver`` is the same as the ``feedserver`` command."""

from feedserver.cli import main

if __name__ == "__main__":
    main()
