"""tajo-events: receiver and stream processor for Brevo engagement webhooks."""
