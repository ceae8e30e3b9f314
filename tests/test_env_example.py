"""`.env.example` is generated from the settings schema and must not go stale."""

from ops.env import schema


def test_env_example_is_generated_from_the_schema(repo_root):
    committed = (repo_root / ".env.example").read_text()
    assert committed == schema.render_example(), (
        ".env.example is stale: run `uv run inv env.example` and commit it"
    )
