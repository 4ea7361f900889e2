"""Fakes of the services this project talks to, run for real on 127.0.0.1."""
