"""Rules without a database: numbers, the code and status-list formats, the type catalog."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.config import Settings
from exchange.documents import ContentError
from exchange.licences import content
from exchange.licences.numbers import check_char, make_number, number_problem, split_number
from exchange.licences.token import (
    STATUS_CONTEXT,
    Claims,
    StatusList,
    content_digest,
    key_id_of,
    status_body,
)
from exchange.licences.verifier import LicenceVerifier

CREDIT = "11440100865370246J"


def test_number_layout_and_check_character() -> None:
    number = make_number("JHZ", CREDIT, 127)
    assert number == f"JHZ{CREDIT}00000127{number[-1]}"
    assert number_problem(number) is None
    assert split_number(number) == ("JHZ", CREDIT, 127)
    # Any single mistyped character and any swap of two different neighbours is caught.
    for i in range(len(number)):
        for c in "0A7Z":
            if c != number[i]:
                assert number_problem(number[:i] + c + number[i + 1 :]) is not None
    swapped = number[:3] + number[4] + number[3] + number[5:]
    if swapped != number:
        assert number_problem(swapped) is not None
    assert number_problem("jhz") is not None
    assert check_char("0") != check_char("1")


def _claims(key: Ed25519PrivateKey, **change: object) -> Claims:
    values: dict[str, object] = {
        "number": make_number("JHZ", CREDIT, 1),
        "type_code": "JHZ",
        "type_name": "结婚证",
        "holder_kind": "person",
        "holder_id": "440524188001010014",
        "holder_name": "张三",
        "issuer": "mzj",
        "issuer_name": "广州市民政局",
        "issued_on": dt.date(2024, 5, 20),
        "valid_until": None,
        "digest": content_digest({"name": "张三"}),
        "key_id": key_id_of(key.public_key()),
    }
    values.update(change)
    return Claims(**values)  # type: ignore[arg-type]


def _code(key: Ed25519PrivateKey, claims: Claims) -> str:
    return claims.code(key.sign(claims.signed_bytes()))


def _status(
    key: Ed25519PrivateKey, revoked: list[tuple[str, str, dt.datetime]], **kw: object
) -> dict[str, str]:
    body = status_body(
        key_id=key_id_of(key.public_key()),
        issued_at=kw.get("issued_at", dt.datetime.now(dt.UTC)),  # type: ignore[arg-type]
        clock_offset_s=float(kw.get("offset", 0.0)),  # type: ignore[arg-type]
        max_age_s=int(kw.get("max_age", 3600)),  # type: ignore[call-overload]
        revoked=revoked,
    )
    return {"body": body.decode(), "signature": key.sign(STATUS_CONTEXT + body).hex()}


def test_a_code_verifies_and_every_alteration_fails_with_its_reason() -> None:
    key = Ed25519PrivateKey.generate()
    claims = _claims(key)
    code = _code(key, claims)
    verifier = LicenceVerifier([key.public_key()])
    ok = verifier.verify(claims.number, code)
    assert ok.ok
    assert ok.reason == "valid"
    assert ok.claims == claims
    assert ok.status_as_of is None  # no status list: revocation unchecked, and said so

    # Claims altered after signing (a longer validity) no longer match the signature.
    forged = _claims(key, valid_until=dt.date(2099, 1, 1))
    prefix, _, sig = code.split(".")
    tampered = ".".join([prefix, forged.code(b"").split(".")[1], sig])
    assert verifier.verify(claims.number, tampered).reason == "altered"
    # Another licence's number with this code, a broken code, another key.
    other = make_number("JHZ", CREDIT, 2)
    assert verifier.verify(other, code).reason == "number_mismatch"
    assert verifier.verify(claims.number, code[:-5]).reason in {"altered", "malformed"}
    assert verifier.verify(claims.number, "LV1.x.y").reason == "malformed"
    assert verifier.verify(claims.number, "not a code").reason == "malformed"
    stranger = LicenceVerifier([Ed25519PrivateKey.generate().public_key()])
    assert stranger.verify(claims.number, code).reason == "unknown_key"
    # The presented items must be the ones signed.
    assert verifier.verify(claims.number, code, content={"name": "张三"}).ok
    assert verifier.verify(claims.number, code, content={"name": "王五"}).reason == (
        "content_altered"
    )


def test_expiry_follows_the_platform_day() -> None:
    key = Ed25519PrivateKey.generate()
    claims = _claims(key, valid_until=dt.date(2030, 12, 31))
    code = _code(key, claims)
    verifier = LicenceVerifier([key.public_key()])
    assert verifier.verify(claims.number, code, today=dt.date(2030, 12, 31)).ok
    assert verifier.verify(claims.number, code, today=dt.date(2031, 1, 1)).reason == "expired"
    # A status list carries the platform clock's offset: ten years ahead, it has expired.
    verifier.use_status(_status(key, [], offset=10 * 366 * 86400.0))
    assert verifier.verify(claims.number, code).reason == "expired"


def test_the_platform_day_and_staleness_move_with_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The verifier works the platform's day out once per day: a licence valid on its
    last day fails the next morning, and a list goes stale past its max age, in one
    verifier that keeps running."""
    key = Ed25519PrivateKey.generate()
    claims = _claims(key, valid_until=dt.date(2030, 12, 31))
    code = _code(key, claims)
    issued = dt.datetime(2030, 12, 31, 8, tzinfo=dt.UTC)  # 16:00 in Beijing
    status = _status(key, [], issued_at=issued, max_age=6 * 3600)
    verifier = LicenceVerifier([key.public_key()])
    verifier.use_status(status)
    clock = [issued.timestamp() + 3600]  # 17:00 on the last day
    monkeypatch.setattr("exchange.licences.token.time.time", lambda: clock[0])
    first = verifier.verify(claims.number, code)
    assert first.ok
    assert not first.stale
    clock[0] += 6.5 * 3600  # 23:30: still valid, the list now past its 6 hours
    late = verifier.verify(claims.number, code)
    assert late.ok
    assert late.stale
    clock[0] += 3600  # 00:30 the next day in Beijing
    assert verifier.verify(claims.number, code).reason == "expired"


def test_revocation_comes_from_a_signed_status_list() -> None:
    key = Ed25519PrivateKey.generate()
    claims = _claims(key)
    code = _code(key, claims)
    verifier = LicenceVerifier([key.public_key()])
    at = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    verifier.use_status(_status(key, [(claims.number, "注销登记", at)]))
    result = verifier.verify(claims.number, code)
    assert result.reason == "revoked"
    assert result.revoked == ("注销登记", at.isoformat())
    assert result.as_dict()["revocation"] == {"reason": "注销登记", "at": at.isoformat()}
    # A list whose body was edited (the revocation removed) is refused.
    doc = _status(key, [(claims.number, "注销登记", at)])
    edited = {
        "body": doc["body"].replace(claims.number, "X" * len(claims.number)),
        "signature": doc["signature"],
    }
    with pytest.raises(ValueError, match="signature"):
        verifier.use_status(edited)
    # A list signed by another key is refused too.
    with pytest.raises(ValueError, match="unknown key"):
        verifier.use_status(_status(Ed25519PrivateKey.generate(), []))


def test_a_status_list_past_its_max_age_is_stale() -> None:
    key = Ed25519PrivateKey.generate()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    status = StatusList.parse(
        _status(key, [], issued_at=old, max_age=3600),
        {key_id_of(key.public_key()): key.public_key()},
    )
    assert status.stale()
    assert not status.stale(now=old.timestamp() + 10)
    claims = _claims(key)
    verifier = LicenceVerifier([key.public_key()], status)
    result = verifier.verify(claims.number, _code(key, claims))
    assert result.ok
    assert result.stale
    assert time.time() > old.timestamp()


def test_the_catalog_profile_reproduces_the_platform_figures() -> None:
    catalog = content.load(Settings().catalog_dir)
    types = content.expand(catalog)
    assert len(types) == 507
    assert sum(t.online for t in types) == 422
    assert len({t.issuer for t in types}) == 34
    assert sum(t.issued for t in types) == 17_760_000
    by_name = {t.name: t.issued for t in types}
    assert by_name["营业执照"] == 2_890_000
    assert by_name["广东省居住证"] == 3_140_000
    assert by_name["职业资格证书"] == 2_470_000
    assert by_name["结婚证"] == 2_940_000
    assert len({t.code for t in types}) == 507
    assert len({t.name for t in types}) == 507
    assert content.expand(catalog) == types  # deterministic


def test_the_catalog_refuses_an_issuer_that_is_not_listed(tmp_path: object) -> None:
    catalog = content.load(Settings().catalog_dir)
    raw = catalog.model_dump()
    raw["types"][0]["issuer"] = "nobody"
    with pytest.raises(ValueError, match="not in issuers"):
        content.LicenceCatalog.model_validate(raw)


def test_a_bad_types_file_is_refused_naming_file_field_and_reason(tmp_path: Path) -> None:
    good = (Settings().catalog_dir / content.TYPES_FILE).read_text(encoding="utf-8")
    (tmp_path / "licences").mkdir()
    file = tmp_path / content.TYPES_FILE
    file.write_text(good.replace("issuers:", "issuers: [gaj, gaj]\nold_issuers:", 1), "utf-8")
    with pytest.raises(ContentError) as caught:
        content.load(tmp_path)
    assert caught.value.file == str(file)
    assert caught.value.field == "old_issuers"
    assert "unknown field" in caught.value.reason
    file.write_text("profile: [unclosed\n", "utf-8")
    with pytest.raises(ContentError, match=r"types\.yaml: not valid YAML at line"):
        content.load(tmp_path)


def test_a_remembered_signature_still_gets_every_other_check() -> None:
    key = Ed25519PrivateKey.generate()
    claims = _claims(key, valid_until=dt.date(2030, 1, 1))
    code = _code(key, claims)
    verifier = LicenceVerifier([key.public_key()], memo=10)
    assert verifier.verify(claims.number, code).ok
    assert verifier.verify(claims.number, code).ok  # from the memo
    assert verifier.verify(make_number("JHZ", CREDIT, 9), code).reason == "number_mismatch"
    assert verifier.verify(claims.number, code, content={"x": "y"}).reason == "content_altered"
    assert verifier.verify(claims.number, code, today=dt.date(2031, 1, 1)).reason == "expired"
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    verifier.use_status(_status(key, [(claims.number, "吊销", at)]))
    assert verifier.verify(claims.number, code).reason == "revoked"
    # A failed code is never remembered; the memo is bounded.
    prefix, payload, sig = code.split(".")
    flipped = "B" if sig[10] == "A" else "A"
    bad = f"{prefix}.{payload}.{sig[:10]}{flipped}{sig[11:]}"
    assert verifier.verify(claims.number, bad).reason == "altered"
    assert verifier.verify(claims.number, bad).reason == "altered"
    for i in range(25):
        other = _claims(key, number=make_number("JHZ", CREDIT, 100 + i))
        verifier.verify(other.number, _code(key, other))
    assert len(verifier._verified) <= 10
