"""The only code that sequences the stages, and every speed-up (reuse between
builds, incremental plans, worker processes) behind one object."""
