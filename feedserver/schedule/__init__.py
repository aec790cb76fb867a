"""Keep the output fresh: the APScheduler job, the watcher, live config, locks."""
