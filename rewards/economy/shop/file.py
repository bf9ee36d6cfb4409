"""The shop file: a JSON list of items (or ``{"items": [...]}``), validated as a whole.

Every problem of every item is reported at once, located by item and field (``item 3: cost:
must be ...``), as the catalogue does, so an author fixes the file in one pass. The file is read
within the same limits as a catalogue (size, nesting, duplicate keys, control characters) and
the `available_to` entries are the catalogue's `awardee` entries, checked by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from rewards.catalog.loader import read_json
from rewards.catalog.permissions import PermissionEntry
from rewards.catalog.problems import Issue, issues_from, show
from rewards.economy.shop.model import PERIODS, ShopItem
from rewards.errors import CatalogError, CatalogProblem
from rewards.inputs.text import document_text_problems

MAX_COST = 1_000_000_000


class ShopProblem(CatalogProblem):
    """One problem of a shop file: which item, which field, what is wrong."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"item {self.reward_id}: {self.field}: {self.message}"


class ShopFileError(CatalogError):
    """A shop file did not validate; `problems` holds one `ShopProblem` per problem."""

    code = "shop-invalid"


class ItemSpec(BaseModel):
    """One item as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: StrictInt = Field(ge=1, le=2_147_483_647)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    cost: StrictInt = Field(ge=0, le=MAX_COST)
    stock: StrictInt | None = Field(default=None, ge=0, le=2_147_483_647)
    per_member_limit: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    limit_period: str | None = None
    approval: StrictBool = False
    icon: str | None = Field(default=None, max_length=2000)
    available_to: tuple[PermissionEntry, ...] = ()

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        if value.isdigit():
            raise ValueError("must not be a number (members redeem an item by its id or its name)")
        return value

    @field_validator("limit_period")
    @classmethod
    def _a_period(cls, value: str | None) -> str | None:
        if value is not None and value not in PERIODS:
            raise ValueError(f"must be one of {', '.join(PERIODS)} (or left out: ever)")
        return value

    @field_validator("available_to", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError('must be a list of entries such as {"job_code": ["MANAGER"]}')
        return value

    @model_validator(mode="after")
    def _period_needs_limit(self) -> ItemSpec:
        if self.limit_period is not None and self.per_member_limit is None:
            raise ValueError("limit_period is given without a per_member_limit to count")
        return self

    def item(self) -> ShopItem:
        return ShopItem(
            item_id=self.item_id,
            name=self.name,
            description=self.description.strip(),
            cost=self.cost,
            stock=self.stock,
            per_member_limit=self.per_member_limit,
            limit_period=self.limit_period,
            approval=self.approval,
            icon=self.icon or None,
            available_to=self.available_to,
        )


def _label(raw: dict[str, Any], position: int) -> object:
    item_id = raw.get("item_id")
    return item_id if isinstance(item_id, int) and not isinstance(item_id, bool) else f"#{position}"


def _items_list(data: object) -> tuple[list[Any] | None, list[CatalogProblem]]:
    if isinstance(data, list):
        return data, []
    if isinstance(data, dict) and "items" in data:
        problems: list[CatalogProblem] = [
            ShopProblem("-", str(key), 'unknown top-level field (only "items")')
            for key in data
            if key != "items"
        ]
        if not isinstance(data["items"], list):
            problems.append(
                ShopProblem("-", "items", f"must be a list of items, got {show(data['items'])}")
            )
            return None, problems
        return data["items"], problems
    return None, [ShopProblem("-", "(shop)", 'must be a list of items or {"items": [...]}')]


def parse_shop(data: object) -> list[ShopItem]:
    """Validate a whole shop; raise `ShopFileError` with every problem of every item."""
    raw_items, problems = _items_list(data)
    items: list[ShopItem] = []
    ids: dict[int, object] = {}
    names: dict[str, object] = {}
    for position, raw in enumerate(raw_items or [], start=1):
        if not isinstance(raw, dict):
            problems.append(
                ShopProblem(f"#{position}", "(item)", f"must be an object, got {show(raw)}")
            )
            continue
        label = _label(raw, position)
        issues: list[Issue] = [
            (f"{key}", "given twice in one object; the values would overwrite each other")
            for key in getattr(raw, "duplicates", ())
        ]
        issues.extend(document_text_problems(raw))
        spec: ItemSpec | None = None
        try:
            spec = ItemSpec.model_validate(dict(raw))
        except ValidationError as error:
            issues.extend(issues_from(error, "", ItemSpec))
        if spec is not None:
            if spec.item_id in ids:
                issues.append(
                    ("item_id", f"duplicate item_id {spec.item_id} (also {ids[spec.item_id]})")
                )
            else:
                ids[spec.item_id] = f"item #{position}"
            folded = spec.name.casefold()
            if folded in names:
                issues.append(("name", f'duplicate name "{spec.name}" (also item {names[folded]})'))
            else:
                names[folded] = label
        problems.extend(ShopProblem(label, field or "(item)", message) for field, message in issues)
        if spec is not None and not issues:
            items.append(spec.item())
    if problems:
        raise ShopFileError(problems)
    return items


def _as_shop_error(error: CatalogError) -> ShopFileError:
    return ShopFileError([ShopProblem(p.reward_id, p.field, p.message) for p in error.problems])


def load_shop_file(path: str | Path) -> list[ShopItem]:
    """Read and validate a shop file; raise `ShopFileError` with every problem."""
    location = Path(path)
    try:
        text = location.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ShopFileError(
            [ShopProblem("-", "(file)", f"cannot read {location}: {reason}")]
        ) from None
    try:
        data = read_json(text)
    except CatalogError as error:
        raise _as_shop_error(error) from None
    duplicates: Sequence[str] = getattr(data, "duplicates", [])
    if duplicates:
        raise ShopFileError(
            [ShopProblem("-", key, "given twice at the top of the file") for key in duplicates]
        )
    return parse_shop(data)
