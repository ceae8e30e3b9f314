from ops import console


def test_tables_fit_the_terminal_and_wrap_long_cells(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    rows = [{"check": "docker", "status": "warn", "detail": "no engine answers " * 4}]
    console.print_table("doctor", ["check", "status", "detail"], rows, status_key="status")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "doctor"
    assert all(len(line) <= 40 for line in lines)
    body = "".join(line.split("│")[3] for line in lines[4:-1])
    assert " ".join(body.split()) == ("no engine answers " * 4).strip(), "nothing is cut"
    assert "\033[" not in "".join(lines), "no colour codes when stdout is not a terminal"
