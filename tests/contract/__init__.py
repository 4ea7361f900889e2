"""Contract suites: one suite per port, run against every adapter of it."""
