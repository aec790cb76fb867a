"""WebSub: the feeds' publisher side (hub links, pings to external hubs) and a built-in hub.

- :mod:`~feedserver.websub.store`: subscriptions and the durable delivery queue (SQLite);
- :mod:`~feedserver.websub.hub`: ``POST /websub`` requests, checked and recorded (web workers);
- :mod:`~feedserver.websub.deliver`: verification of intent, pushes, retries (the scheduler's
  process only);
- :mod:`~feedserver.websub.ping`: "this feed changed" to external hubs;
- :mod:`~feedserver.websub.addresses`: which callback URLs may be called, and calling them.

Nothing here imports the build: the scheduler hands over the paths a publish changed.
"""
