"""The pipeline steps. Each is idempotent: run twice, it writes once.

A redelivered or duplicated task finds its result already stored and skips the work;
unique constraints make concurrent duplicates harmless (the second insert does nothing).
"""
