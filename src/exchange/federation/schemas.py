"""Bodies and answers of ``/api/v1/federation``. Imports only pydantic."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ResourceCode = Annotated[str, StringConstraints(pattern=r"^[1-3]\d{8}/\d{6}$")]


class PublicationRequest(BaseModel):
    """Topics to publish to the peer platform (or withdraw), in bulk."""

    model_config = ConfigDict(extra="forbid")

    resource_codes: Annotated[list[ResourceCode], Field(min_length=1, max_length=5000)]


class PublicationResult(BaseModel):
    published: list[str] = Field(description="Newly published by this call.")
    already: list[str] = Field(description="Already published before (left as they were).")


class WithdrawResult(BaseModel):
    withdrawn: list[str]


class PublicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resource_code: str
    by: str
    records_provided: int


class PublicationPage(BaseModel):
    total: int
    items: list[PublicationOut]


class FederationStatus(BaseModel):
    level: str = Field(description="city or province")
    own_code: str = Field(description="This platform's unit code at its peer.")
    peer_code: str = Field(description="The peer platform's unit code here.")
    peer_url: str | None
    feed_cursor: int = Field(description="Where this platform stands in the peer's feed.")
    published: int = Field(description="Topics published to the peer.")
    mounted: int = Field(description="Peer topics in this catalog (live).")
    revoked_incoming: int = Field(description="Grants the peer revoked, refused here.")
    last_sync_error: str | None
    provided_to_peer: int = Field(
        description="Topics provided to the peer as data: published topics its unit holds "
        "a live grant on here (what it may pull in bulk)."
    )
    provided_by_peer: int = Field(
        description="Topics the peer provides as data: mounted topics whose records this "
        "platform pulls from it in bulk."
    )
    records_provided: int = Field(
        description="Records this platform provided to the peer (lookups and bulk "
        "provision), cumulative since the topics were published."
    )
    records_received: int = Field(
        description="Records the peer provided in bulk and this platform stored, cumulative."
    )


class ProvisionOut(BaseModel):
    """A mounted topic whose records this platform pulls from the peer in bulk."""

    resource_code: str = Field(description="The mounted topic's code here.")
    peer_resource_code: str = Field(description="Its code at the peer.")
    rows: int = Field(description="Watermark: the peer's export rows received so far.")
    changes: int | None = Field(
        description="Watermark: the peer's change events received so far (null before the "
        "first page pins it)."
    )
    records: int = Field(description="Records (and change events) stored, cumulative.")
    batches: int = Field(description="Pages stored.")
    last_error: str | None = None


class ProvisionPage(BaseModel):
    items: list[ProvisionOut]


class ProvisionResult(BaseModel):
    enabled: list[str] = Field(description="Newly enabled by this call.")
    already: list[str] = Field(description="Enabled before (left as they were).")


class SyncResult(BaseModel):
    applied: dict[str, int] = Field(description="Feed entries applied, by what they did.")


class ExchangeRecord(BaseModel):
    """Both platforms' audit entries of one cross-level exchange."""

    request_id: str
    here: list[dict[str, Any]]
    peer: list[dict[str, Any]] | None = Field(
        description="The peer's entries with the same correlation id; null if unreachable."
    )
    peer_error: str | None = None
