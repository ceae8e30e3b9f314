"""Generated gRPC code. Edit `whisper/v1/transcriber.proto`, then run scripts/gen_proto.py."""
