"""whisper.v1: the first version of the transcription API."""
