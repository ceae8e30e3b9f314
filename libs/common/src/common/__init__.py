"""What several services share: settings base, logging, health checks, metrics."""
