"""Namespace of the whisper API protos (kept under whisper_service: no top-level `whisper`)."""
