"""Federation tables: what this platform publishes to its peer, what it mounted from the
peer, where it stands in the peer's feeds, the records the peer provided in bulk, and
revocations passed across."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, utcnow

_ID = BigInteger().with_variant(Integer(), "sqlite")


class Publication(Base):
    """A local topic published to the peer platform (the operator's flag)."""

    __tablename__ = "federation_publication"

    resource_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    by: Mapped[str] = mapped_column("published_by", String(32), key="by")  # BY is reserved in SQL
    #: records provided to the peer from this topic (bulk provision and lookups), cumulative
    records_provided: Mapped[int] = mapped_column(BigInteger, default=0)


class FeedEntry(Base):
    """The feed the peer follows: every publication, change, withdrawal and retirement of a
    published topic, in order, each with the topic's whole document at that point (so a
    peer that missed entries converges by applying the newest)."""

    __tablename__ = "federation_feed"

    cursor: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # published | changed | withdrawn | retired
    resource_code: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class Mount(Base):
    """A peer topic mounted in this platform's catalog under a code of this catalog."""

    __tablename__ = "federation_mount"

    peer_resource_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_code: Mapped[str] = mapped_column(String(16), unique=True)
    peer_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # published | retired
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Cursor(Base):
    """Where this platform stands in one of the peer's sequences (its feed, a topic's
    provision watermark), committed with what was applied up to it."""

    __tablename__ = "federation_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    #: records received under this cursor, cumulative (bulk provision)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Revocation(Base):
    """A grant on a mounted topic, revoked here (``outgoing``, delivered to the peer once)
    or revoked at the peer and received (``incoming``): the providing platform then
    refuses that grant's calls, whatever the peer's broker says."""

    __tablename__ = "federation_revocation"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(8))  # outgoing | incoming
    grant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    consumer: Mapped[str] = mapped_column(String(32))
    resource_code: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ProvisionBatch(Base):
    """One page of a peer topic's records provided in bulk (see
    :mod:`exchange.federation.provision`), stored in the transaction that moves the
    provision's cursors past it: each page is held exactly once."""

    __tablename__ = "federation_provision_batch"
    __table_args__ = (Index("ix_federation_provision_batch_peer_id", "peer_resource_code", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    peer_resource_code: Mapped[str] = mapped_column(String(16))
    #: the mounted topic's code in this catalog
    resource_code: Mapped[str] = mapped_column(String(16))
    #: the page's span of the provider's export rows and of the peer's change outbox
    rows_from: Mapped[int] = mapped_column(BigInteger)
    rows_to: Mapped[int] = mapped_column(BigInteger)
    changes_from: Mapped[int] = mapped_column(BigInteger)
    changes_to: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    #: the records, NDJSON (zlib); the change events, NDJSON (zlib, empty when none)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    changes: Mapped[bytes] = mapped_column(LargeBinary)
    #: this platform's request id of the call that brought it (the peer audits it too)
    request_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: folded into a newer page by pruning (:mod:`exchange.federation.retention`): no
    #: longer listed, deleted once a reader that listed it before has had time to finish
    superseded_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Forward(Base):
    """An application forwarded across levels, kept on both platforms.

    ``origin``: the consumer's platform (an application for a topic mounted from the peer,
    forwarded there for review); ``review``: the provider's platform (the application the
    forward became, in its provider department's normal review queue). The review side
    bumps ``version`` whenever the application or its grant changes, and the origin
    applies each state once, in order: ``sent_version`` is what the peer acknowledged.
    """

    __tablename__ = "federation_forward"
    __table_args__ = (
        Index("ix_federation_forward_role_peer", "role", "peer_application_id", unique=True),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(8))  # origin | review
    #: this platform's application
    application_id: Mapped[int] = mapped_column(Integer, index=True)
    #: the peer's application (known at the origin once the peer took the forward)
    peer_application_id: Mapped[int | None] = mapped_column(Integer, default=None)
    #: the one id both audit trails file this application's exchanges under
    correlation_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: the origin platform's department that applied
    consumer: Mapped[str] = mapped_column(String(32))
    #: the topic in this catalog
    resource_code: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=0)
    sent_version: Mapped[int] = mapped_column(Integer, default=0)
    #: the newest state of the peer's application applied here (origin)
    peer_version: Mapped[int] = mapped_column(Integer, default=0)
    #: the dispute's events on this platform's application, delivered to the peer up to
    #: this event id; and the peer's, applied here up to this id (its event ids)
    #: (:mod:`exchange.federation.disputes`)
    dispute_sent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    dispute_received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
