"""`rewards chat`: a scripted terminal session gives kudos and a badge through the dialog engine."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bots.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rewards.json"
PEOPLE = """email,display_name,job_code,department
ana@example.com,Ana Lopez,MANAGER,Engineering
li@example.com,Li Wei,EMPLOYEE,Engineering
"""


def test_chat_session_gives_kudos_and_a_badge(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "none.env"),
    }
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    runner = CliRunner()
    for args in (["members", "import", str(people)], ["catalog", "load", str(EXAMPLES)]):
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    script = "\n".join(
        [
            "/kudos @li thanks for the demo #teamwork",
            "/badge",
            "Employee of the Month",
            "@li",
            "Great month",
            "1",  # the "Give badge" button
            "1",  # pressed again: there is no card with buttons any more
            "/me",
            "/quit",
            "/help",  # never read
        ]
    )
    result = runner.invoke(cli, ["chat", "--as", "ANA@example.com"], input=script + "\n", env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Ana Lopez → Li Wei" in out and "#teamwork" in out
    assert "1) Give badge" in out
    assert "Li Wei received Employee of the Month from Ana Lopez" in out
    assert "Kudos given:    1" in out
    assert "Here is what I can do" not in out
    assert "Traceback" not in out

    result = runner.invoke(cli, ["chat", "--as", "li@example.com"], input="/me\n/me\n", env=env)
    assert result.exit_code == 0
    # 200 (the badge) + 5 (the kudos); then + 20: Li's first turn of the day is a "login", which
    # the example catalogue's Automated Badges "Welcome to Navigator" and "Welcome Badge" reward
    # right after that turn's reply.
    first, second = result.output.split("> /me")[1:]
    assert "Points:         205" in first
    assert "Points:         225" in second
    assert "Rank:           #1" in result.output


def test_unknown_member_exits_2(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "none.env"),
    }
    result = CliRunner().invoke(cli, ["chat", "--as", "ghost@example.com"], input="", env=env)
    assert result.exit_code == 2
    assert "no member has the email 'ghost@example.com'" in result.output


def test_newcomer_gets_the_example_catalogue_without_loading_it(tmp_path: Path) -> None:
    """Import people, then chat: the catalogue files load at chat start, as at server start."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "none.env"),
        "REWARDS_CATALOG": str(EXAMPLES),
    }
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    runner = CliRunner()
    result = runner.invoke(cli, ["members", "import", str(people)], env=env)
    assert result.exit_code == 0, result.output
    # The badge by name: which badges are listed depends on the hour (Early Bird Special).
    script = "/badge\nEmployee of the Month\n@li\n\n1\n"
    result = runner.invoke(cli, ["chat", "--as", "ana@example.com"], input=script, env=env)
    assert result.exit_code == 0, result.output
    assert "Li Wei received Employee of the Month from Ana Lopez" in result.output
