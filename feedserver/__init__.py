"""feedserver: publish a folder of articles as validated RSS, Atom and JSON feeds.

The package keeps a pure core (``articles``, ``topics``, ``feeds``, ``validate``,
``pipeline``) apart from the shells that do I/O (``scan``, ``ledger``,
``publish``, ``job``, ``web``, ``scheduler``, ``cli``).
"""

__version__ = "0.1.0"
