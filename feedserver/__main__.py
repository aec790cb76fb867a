"""``python -m feedserver`` is the same as the ``feedserver`` command."""

from .cli import main

if __name__ == "__main__":
    main()
