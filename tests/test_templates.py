"""Message templates: documented variables render; reaching for Python internals is refused,
both when a catalogue is loaded and when a message is rendered."""

from __future__ import annotations

import pytest

from rewards.catalog.loader import parse_catalog
from rewards.errors import CatalogError, TemplateRefused
from rewards.templates import check_template, render

VARS = {
    "user": {"display_name": "Ana"},
    "reward": {"name": "Top Seller", "points": 50},
    "env": {"month_name": "November"},
    "args": {"rank": 1},
}


def test_documented_variables_render():
    text = render(
        "{{user.display_name}} got {{reward.name}} ({{reward.points}}) in {{env.month_name}}, "
        "rank #{{args.rank}}{% if args.rank == 1 %}!{% endif %}",
        **VARS,
    )
    assert text == "Ana got Top Seller (50) in November, rank #1!"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "Python internals"),
        ("{{ user['__class__'] }}", "Python internals"),
        ("{{ user.display_name|attr('__class__') }}", "not allowed"),
        ("{{ cycler.__init__.__globals__ }}", "Python internals"),
        ("{{ config }}", "available variables are args, env, reward, user"),
        ("{{ range(10) }}", "available variables"),
        ("{{ user.display_name ", "syntax error"),
        ("{{ user.missing }}", "missing value"),
    ],
)
def test_unsafe_or_broken_templates_are_refused(source, reason):
    with pytest.raises(TemplateRefused, match=reason):
        render(source, **VARS)


def test_loop_variables_are_allowed():
    check_template("{% for k in args %}{{ k }}{{ loop.index }}{% endfor %}{% set x = 1 %}{{ x }}")


def test_catalogue_refuses_an_unsafe_message_naming_reward_and_field():
    with pytest.raises(CatalogError) as refused:
        parse_catalog(
            [
                {
                    "reward_id": 4242,
                    "reward": "Sneaky",
                    "reward_category": "Recognition",
                    "message": "{{ ''.__class__.__mro__ }}",
                }
            ]
        )
    assert [str(p) for p in refused.value.problems] == [
        "reward 4242: message: the message template reaches for '__mro__'; names starting with "
        "'_' are Python internals and are not allowed"
    ]
