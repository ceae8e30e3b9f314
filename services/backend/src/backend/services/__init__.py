"""What the routes use: upload handling, audio sniffing, the task queue, search."""
