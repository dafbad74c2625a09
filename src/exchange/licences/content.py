"""The licence-type catalog: ``catalog/licences/types.yaml`` loaded, checked and expanded.

The file holds the profile's figures (507 types, 422 online, 17.76 M issued), the 34
issuing departments, hand-written types with their items and starting counts, and name
stems per issuer. :func:`expand` turns it into exactly ``profile.types`` types, the same list
every time: hand-written types first, then types named from each issuer's stems and
qualifiers, dealt round-robin over the issuers; the starting counts of the generated types
share what the hand-written ones leave of ``profile.issued`` by a Zipf-like weight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exchange.documents import ContentError, load_document

__all__ = [
    "ContentError",
    "ItemSpec",
    "LicenceCatalog",
    "LicenceTypeSpec",
    "Profile",
    "expand",
    "load",
]

#: The licence catalog's file under the catalog directory.
TYPES_FILE = Path("licences") / "types.yaml"
TYPE_CODE = r"^[A-Z][A-Z0-9]{1,7}$"
FIELD_NAME = r"^[a-z][a-z0-9_]{0,39}$"
HolderKind = Literal["person", "legal_person"]
DataType = Literal["string", "integer", "date"]
# Stems naming a certificate held by a person rather than by an organisation.
_PERSONAL = ("执业证", "资格", "驾驶证", "驾驶人", "残疾人证", "操作证", "指导员", "积分",
             "随迁", "户口", "教职", "待遇", "从业资格", "行驶证")  # fmt: skip


class ItemSpec(BaseModel):
    """One item (照面信息项) of a licence type."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=FIELD_NAME)
    name: str = Field(min_length=1, max_length=50)
    data_type: DataType = "string"
    required: bool = False


class LicenceTypeSpec(BaseModel):
    """One licence type (证照类型)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=TYPE_CODE)
    name: str = Field(min_length=1, max_length=100)
    issuer: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    holder: HolderKind
    validity_years: int | None = Field(default=None, ge=1, le=50)
    online: bool = True
    issued: int = Field(default=0, ge=0, description="Licences issued by the profile's date.")
    items: list[ItemSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_items(self) -> LicenceTypeSpec:
        fields = [i.field for i in self.items]
        if len(fields) != len(set(fields)):
            raise ValueError("two items share a field name")
        return self


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    types: int = Field(ge=1, le=10_000)
    online: int = Field(ge=0)
    issued: int = Field(ge=0)
    as_of: dt.date


class LicenceCatalog(BaseModel):
    """The file as written."""

    model_config = ConfigDict(extra="forbid")

    profile: Profile
    issuers: list[str] = Field(min_length=1)
    types: list[LicenceTypeSpec]
    stems: dict[str, list[str]]
    qualifiers: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> LicenceCatalog:
        if len(set(self.issuers)) != len(self.issuers):
            raise ValueError("issuers: a department is named twice")
        codes = [t.code for t in self.types]
        if len(codes) != len(set(codes)):
            raise ValueError("types: two types share a code")
        for t in self.types:
            if t.issuer not in self.issuers:
                raise ValueError(f"types: {t.code}'s issuer {t.issuer!r} is not in issuers")
        missing = [i for i in self.issuers if not self.stems.get(i)]
        if missing:
            raise ValueError(f"stems: no names for issuers {missing}")
        if self.profile.online > self.profile.types:
            raise ValueError("profile: more types online than types")
        if sum(t.issued for t in self.types) > self.profile.issued:
            raise ValueError("types: the hand-written counts exceed profile.issued")
        return self


def load(catalog_dir: Path) -> LicenceCatalog:
    """Read and validate ``licences/types.yaml`` of the catalog directory."""
    return load_document(catalog_dir / TYPES_FILE, LicenceCatalog)


def _generic_items(holder: HolderKind) -> list[ItemSpec]:
    who = "姓名" if holder == "person" else "持证主体名称"
    return [
        ItemSpec(field="name", name=who, required=True),
        ItemSpec(field="scope", name="许可(资格)事项", required=True),
        ItemSpec(field="remark", name="备注"),
    ]


def _generated_names(catalog: LicenceCatalog) -> Iterator[tuple[str, str]]:
    """(issuer, name) pairs, round-robin over the issuers, stem by stem then qualified."""
    taken = {t.name for t in catalog.types}
    rounds = [""] + [f"({q})" for q in catalog.qualifiers]
    for suffix in rounds:
        depth = max(len(s) for s in catalog.stems.values())
        for k in range(depth):
            for issuer in catalog.issuers:
                stems = catalog.stems[issuer]
                if k < len(stems) and (name := stems[k] + suffix) not in taken:
                    taken.add(name)
                    yield issuer, name


def expand(catalog: LicenceCatalog) -> list[LicenceTypeSpec]:
    """The profile's ``types`` licence types (see the module docstring)."""
    profile = catalog.profile
    out = list(catalog.types[: profile.types])
    want = profile.types - len(out)
    names = _generated_names(catalog)
    generated: list[LicenceTypeSpec] = []
    for j in range(want):
        try:
            issuer, name = next(names)
        except StopIteration:
            raise ContentError(
                TYPES_FILE,
                "stems",
                f"stems and qualifiers name only {len(out) + j} types; the profile wants "
                f"{profile.types}",
            ) from None
        holder: HolderKind = "person" if any(p in name for p in _PERSONAL) else "legal_person"
        generated.append(
            LicenceTypeSpec(
                code=f"T{j + 1:04d}",
                name=name,
                issuer=issuer,
                holder=holder,
                validity_years=(None, 3, 5, 6)[j % 4],
                items=_generic_items(holder),
            )
        )
    # Offline types: spread evenly over the generated ones (hand-written ones are online).
    offline = profile.types - profile.online
    if offline > len(generated):
        raise ContentError(TYPES_FILE, "profile.online", "more types offline than generated types")
    for j, spec in enumerate(generated):
        if offline and (j + 1) * offline // len(generated) > j * offline // len(generated):
            spec.online = False
    # Starting counts: what the hand-written types leave, by weight 1/(j+1)^0.8.
    rest = profile.issued - sum(t.issued for t in out)
    weights = [1 / (j + 1) ** 0.8 for j in range(len(generated))]
    total = sum(weights) or 1.0
    counts = [int(rest * w / total) for w in weights]
    if counts:
        counts[0] += rest - sum(counts)
    for spec, n in zip(generated, counts, strict=True):
        spec.issued = n
    return out + generated


def issuers_of(types: Iterable[LicenceTypeSpec]) -> set[str]:
    return {t.issuer for t in types}
