"""Celery worker running the meeting pipeline: transcribe -> analyze -> index."""
