"""Folding canonical events into per-customer engagement state, and the Faust app that runs the fold."""
