"""The API's own database access; the tables and sessions are `meetings`' (libs/meetings)."""
