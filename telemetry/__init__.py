"""What the services tell about themselves: Prometheus metrics, the request in hand, and safe log lines."""
