"""Configuration, security and error handling shared by every route."""
