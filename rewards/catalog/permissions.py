"""`assigner` / `awardee` entries: who may give a reward and who may receive it.

Entries are OR-ed: any entry that matches allows. Inside one entry, every key given must match
(AND), so `{"job_code": ["MANAGER"], "department": ["Sales"]}` means "a manager in Sales".
An empty list means "anyone".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True)
class Subject:
    """The attributes of a member that permissions look at."""

    id: int
    email: str
    job_code: str | None
    department: str | None
    groups: frozenset[str]


def _as_list(value: object) -> list[str | int]:
    if value is None:
        return []
    if isinstance(value, bool):
        raise ValueError("must be a string or a list of strings")
    if isinstance(value, str | int):
        return [value]
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise ValueError(f"must be a list of strings, got an item {item!r}")
        return list(value)
    raise ValueError("must be a string or a list of strings")


def _member_ref(value: str) -> str:
    """A member is named by email or numeric id. Anything else is refused: the original stored
    entries as *stringified* dicts (``"{'job_code': ['MANAGER']}"``), which as a member name would
    silently match nobody."""
    text = value.strip()
    if text.isdigit() or ("@" in text and " " not in text and not text.startswith(("{", "["))):
        return text
    raise ValueError(
        f"a bare entry names one member by email or id, got {value!r}; "
        'write other clauses as objects such as {"job_code": ["MANAGER"]}'
    )


class PermissionEntry(BaseModel):
    """One clause. A bare string or int in the JSON means a member email or id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_code: tuple[str, ...] = Field(default=())
    groups: tuple[str, ...] = Field(default=())
    department: tuple[str, ...] = Field(default=())
    members: tuple[str, ...] = Field(default=())

    @model_validator(mode="before")
    @classmethod
    def _bare_member(cls, data: object) -> object:
        """A bare email or id in the JSON list is a clause naming that one member."""
        if isinstance(data, bool):
            raise ValueError('an entry is an object such as {"job_code": ["MANAGER"]}')
        if isinstance(data, int):
            return {"members": [str(data)]}
        if isinstance(data, str):
            return {"members": [_member_ref(data)]}
        return data

    @field_validator("job_code", "groups", "department", "members", mode="before")
    @classmethod
    def _listify(cls, value: object) -> tuple[str, ...]:
        return tuple(str(v).strip() for v in _as_list(value) if str(v).strip())

    @field_validator("members")
    @classmethod
    def _member_refs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_member_ref(v) for v in value)

    @model_validator(mode="after")
    def _not_empty(self) -> PermissionEntry:
        # An empty clause matches nobody, so `[{}]` would silently lock a reward; an empty *list*
        # is how a catalogue says "anyone".
        if self.is_empty():
            raise ValueError(
                "an empty entry matches nobody; leave the list empty to allow everyone"
            )
        return self

    def is_empty(self) -> bool:
        return not (self.job_code or self.groups or self.department or self.members)

    def matches(self, who: Subject) -> bool:
        if self.is_empty():
            return False
        if self.job_code and (who.job_code or "").upper() not in {j.upper() for j in self.job_code}:
            return False
        if self.department and (who.department or "").casefold() not in {
            d.casefold() for d in self.department
        }:
            return False
        if self.groups and not {g.casefold() for g in who.groups} & {
            g.casefold() for g in self.groups
        }:
            return False
        if self.members:
            names = {m.casefold() for m in self.members}
            if str(who.id) not in names and who.email.casefold() not in names:
                return False
        return True


def parse_entries(raw: Iterable[object]) -> list[PermissionEntry]:
    """Accept dict clauses, and bare emails / ids as single-member clauses."""
    return [PermissionEntry.model_validate(item) for item in raw]


def allows(entries: Sequence[PermissionEntry], who: Subject) -> bool:
    """No entries: everyone. Otherwise any matching entry allows."""
    return not entries or any(entry.matches(who) for entry in entries)
