"""Customer import: every bad row reported by line, nothing half-imported, updates kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durability.remind.customers import CustomerFileError, parse_customers_csv

HEADER = "id,email,name,language,interval_days,last_copy_at\n"


def test_parse_customers_csv_valid_rows_returned() -> None:
    rows = parse_customers_csv(
        "\ufeffid,email,name,language\nc-1,a@example.com,Łukasz Żółć,PL\n\n"
        'c-2,b@example.com,"Smith, Ann",en\n')
    assert [(r.id, r.email, r.name, r.language) for r in rows] == [
        ("c-1", "a@example.com", "Łukasz Żółć", "pl"),
        ("c-2", "b@example.com", "Smith, Ann", "en"),
    ]
    assert rows[0].interval_days is None and rows[0].last_copy_at is None


def test_parse_customers_csv_bad_rows_all_reported_with_line_numbers() -> None:
    text = HEADER + "\n".join([
        "c-1,a@example.com,A,en,,",
        "c-2,not-an-address,B,en,,",
        "c-1,c@example.com,C,en,,",
        "c-4,A@example.com,D,en,,",
        "c-5,e@example.com,E,de,,",
        "c-6,f@example.com,F,en,0,",
        "c-7,g@example.com,G,en,,yesterday",
        "c 8,h@example.com,H,en,,",
        "c-9,i@example.com,I,en",
    ]) + "\n"
    with pytest.raises(CustomerFileError) as caught:
        parse_customers_csv(text, "in.csv")
    assert caught.value.problems == [
        "line 3: invalid address 'not-an-address'",
        "line 4: duplicate id 'c-1' (first on line 2)",
        "line 5: duplicate address 'A@example.com' (first on line 2)",
        "line 6: language must be one of pl, en, got 'de'",
        "line 7: interval_days must be a whole number from 1 to 3650, got '0'",
        "line 8: last_copy_at must be an ISO-8601 date or time, got 'yesterday'",
        "line 9: invalid id 'c 8' (letters, digits and . _ @ + - only, at most 128)",
        "line 10: expected 6 fields, found 4",
    ]


@pytest.mark.parametrize(("text", "problem"), [
    ("", "the file is empty (expected a header line)"),
    ("id,email,name\nc-1,a@example.com,A\n", "line 1: missing column(s) language"),
    ("id,email,name,language,phone\n", "line 1: unknown column(s) phone"),
    ('id,email,name,language\nc-1,a@example.com,"A,en\n', "line 2:"),
])
def test_parse_customers_csv_malformed_file_rejected(text: str, problem: str) -> None:
    with pytest.raises(CustomerFileError) as caught:
        parse_customers_csv(text)
    assert caught.value.problems[0].startswith(problem)


def _customers(cli: Any, config: Path) -> list[dict[str, Any]]:
    result = cli("--config", config, "customers", "--now", "2026-11-25T10:00:00Z", "list",
                 "--format", "json")
    assert result.code == 0, result.stderr
    return list(json.loads(result.stdout)["customers"])


def test_customers_import_bad_file_imports_nothing(
    cli: Any, write_config: Callable[[str], Path], tmp_path: Path,
) -> None:
    config = write_config("")
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "c-1,a@example.com,A,en,,\n", encoding="utf-8")
    assert cli("--config", config, "customers", "import", good).code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "c-1,new@example.com,A2,pl,,\nc-2,bad@,B,en,,\n", encoding="utf-8")
    result = cli("--config", config, "customers", "import", bad)
    assert result.code == 3
    assert f"{bad}: line 3: invalid address 'bad@'" in result.stderr
    assert "nothing imported" in result.stderr
    assert [(c["id"], c["email"]) for c in _customers(cli, config)] == [("c-1", "a@example.com")]


def test_customers_import_not_utf8_rejected(
    cli: Any, write_config: Callable[[str], Path], tmp_path: Path,
) -> None:
    config = write_config("")
    bad = tmp_path / "latin2.csv"
    bad.write_bytes((HEADER + "c-1,a@example.com,Łukasz,pl,,\n").encode("iso-8859-2"))
    result = cli("--config", config, "customers", "import", bad)
    assert result.code == 3
    assert "not UTF-8 text" in result.stderr
    missing = cli("--config", config, "customers", "import", tmp_path / "nope.csv")
    assert missing.code == 3 and "cannot read" in missing.stderr


def test_customers_import_again_updates_and_keeps_history(
    cli: Any, write_config: Callable[[str], Path], tmp_path: Path,
) -> None:
    config = write_config("")
    first = tmp_path / "one.csv"
    first.write_text(HEADER + "c-1,a@example.com,A,en,,2026-11-01\nc-2,b@example.com,B,en,,\n",
                     encoding="utf-8")
    assert "2 added, 0 updated" in cli("--config", config, "customers", "import", first).stdout
    second = tmp_path / "two.csv"
    second.write_text(HEADER + "c-1,a2@example.com,Anna,pl,14,2026-10-01\n", encoding="utf-8")
    assert "0 added, 1 updated" in cli("--config", config, "customers", "import", second).stdout
    rows = {c["id"]: c for c in _customers(cli, config)}
    assert rows["c-1"]["email"] == "a2@example.com"
    assert rows["c-1"]["language"] == "pl"
    assert rows["c-1"]["interval_days"] == 14
    # An older date in the file never moves the last copy back.
    assert rows["c-1"]["last_copy_at"] == "2026-11-01T00:00:00Z"
    assert "c-2" in rows
    shown = json.loads(cli("--config", config, "customers", "show", "c-1", "--format",
                           "json").stdout)["customer"]
    assert [e["kind"] for e in shown["events"]] == ["import", "address"]


def test_customers_show_unknown_id_exits_3(
    cli: Any, write_config: Callable[[str], Path],
) -> None:
    result = cli("--config", write_config(""), "customers", "show", "nobody")
    assert result.code == 3
    assert "no customer 'nobody'" in result.stderr


def test_customers_import_disk_full_store_clear_error_nothing_imported(
    cli: Any, write_config: Callable[[str], Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlite3

    # SQLite's own page limit gives the real SQLITE_FULL error path, so this test keeps
    # a SQLite store whatever backend the suite runs on.
    del write_config
    config = tmp_path / "sqlite.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    seed = tmp_path / "seed.csv"
    seed.write_text(HEADER + "c-0,z@example.com,Z,en,,\n", encoding="utf-8")
    assert cli("--config", config, "customers", "import", seed).code == 0
    # Fill the store's file system: a store that cannot grow answers SQLITE_FULL.
    database = tmp_path / "state.db"
    with sqlite3.connect(database) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    big = tmp_path / "big.csv"
    big.write_text(HEADER + "".join(f"c-{i},u{i}@example.com,{'N' * 150},en,,\n"
                                    for i in range(1, 3000)), encoding="utf-8")
    from durability.state import store as store_module

    original = store_module.open_sqlite

    def limited(*args: Any, **kwargs: Any) -> Any:
        opened = original(*args, **kwargs)
        opened.connection.cursor().execute(f"PRAGMA max_page_count = {pages + 2}")
        return opened

    monkeypatch.setattr(store_module, "open_sqlite", limited)
    result = cli("--config", config, "customers", "import", big)
    monkeypatch.undo()
    assert result.code == 3
    assert "full" in result.stderr
    assert [c["id"] for c in _customers(cli, config)] == ["c-0"]
