"""Analysis use cases: diagnose stored trials and sweeps, live, on read, and from history."""
