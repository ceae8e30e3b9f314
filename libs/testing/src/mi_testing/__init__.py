"""Test support for the whole workspace: real servers on loopback, never mocks of our own.

Installed (test dependency group only), it registers `mi_testing.plugin` with pytest, so
every test in the tree can ask for `postgres`, `database_url`, `redis_url`, `media_dir`,
`whisper_target`, `llm_url` or `spoken_wav` by name. The helpers below are for tests that
start things themselves.
"""

from mi_testing.processes import ApiServer, ServiceProcess, free_port, subprocess_env, wait_for

__all__ = ["ApiServer", "ServiceProcess", "free_port", "subprocess_env", "wait_for"]
