"""The logic behind `tasks.py`: environments, runtimes, health, database, backups, models.

Keep this module empty of imports: `inv --list` imports `ops.errors` and must stay fast.
"""
