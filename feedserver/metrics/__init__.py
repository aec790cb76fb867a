"""Prometheus instruments shared by the processes of one ``feedserver serve`` run.

:mod:`~feedserver.metrics.instruments` declares the counters and histograms the web
workers, the scheduler and the WebSub deliverer update; :mod:`~feedserver.metrics.multiproc`
gives a server run its private multiprocess folder, so ``/metrics`` in any worker sums
what every process counted; :mod:`~feedserver.metrics.logs` makes log lines JSON
(``log_format = "json"``).  Imports nothing else of feedserver.
"""
