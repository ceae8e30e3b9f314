"""`.env.example` is generated from the settings schema and must not go stale."""

from ops import envschema


def test_env_example_is_generated_from_the_schema(repo_root):
    committed = (repo_root / ".env.example").read_text()
    assert committed == envschema.render_example(), (
        ".env.example is stale: run `uv run inv env.example` and commit it"
    )
