"""Webhook bodies shaped like real Brevo's, for the test suites and the benchmarks alike."""
