"""services/whisper:whisper_service"""
