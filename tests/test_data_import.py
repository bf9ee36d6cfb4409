"""`rewards data import`: numeric data sets for BestSeller, upserted from CSV."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from bots.commands.data import data as data_cli
from tests.support.cli_db import cli_environment, prepare_members


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


_prepare = prepare_members


def _values(path: str) -> list[tuple[str, int, str, str, float]]:
    with closing(sqlite3.connect(path)) as connection:
        return [
            (str(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]))
            for r in connection.execute(
                "SELECT dataset, member_id, day, name, value FROM metric_record "
                "ORDER BY member_id, day, name"
            )
        ]


def test_import_upserts_each_numeric_column(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path, (ann, bob) = _prepare(cli_env)
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text(
        "email,day,sales_count,revenue\n"
        "ann.lee@example.com,2026-11-02,3,1200.5\n"
        "bob.ray@example.com,2026-11-02,1,\n"
        "bob.ray@example.com,2026-11-03,two,10\n"
        "nobody@example.com,2026-11-02,4,4\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(data_cli, ["import", "sales", str(csv_file)], env=cli_env)
    assert result.exit_code == 1, result.output
    assert "imported values: 3, rejected rows: 2" in result.output
    assert "line 4: sales_count 'two' is not a number" in result.output
    assert "line 5: no member with email nobody@example.com" in result.output
    assert _values(path) == [
        ("sales", ann, "2026-11-02", "revenue", 1200.5),
        ("sales", ann, "2026-11-02", "sales_count", 3.0),
        ("sales", bob, "2026-11-02", "sales_count", 1.0),
    ]

    again = tmp_path / "again.csv"
    again.write_text(f"member_id;date;sales_count\n{ann};2026-11-02;5\n", encoding="utf-8")
    result = CliRunner().invoke(data_cli, ["import", "sales", str(again)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert ("sales", ann, "2026-11-02", "sales_count", 5.0) in _values(path)
    assert len(_values(path)) == 3


@pytest.mark.parametrize(
    ("dataset", "content", "message"),
    [
        ("sales", "email,day\na@example.com,2026-11-02\n", "needs numeric columns"),
        ("sales", "email,sales_count\na@example.com,1\n", "needs a day (or date) column"),
        ("sales", "name,day,sales_count\nAnn,2026-11-02,1\n", "needs an email"),
        ("sales", "email,day,Sales Count\na@example.com,2026-11-02,1\n", "unusable column"),
        ("sales; drop", "email,day,n\na@example.com,2026-11-02,1\n", "plain identifier"),
        ("sales", "", "is empty"),
    ],
)
def test_unusable_files_import_nothing(
    tmp_path: Path, cli_env: dict[str, str], dataset: str, content: str, message: str
) -> None:
    path, _ = _prepare(cli_env)
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(data_cli, ["import", dataset, str(bad)], env=cli_env)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Nothing was imported" in result.output
    assert _values(path) == []
