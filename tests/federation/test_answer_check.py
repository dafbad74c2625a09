"""The peer's answer to a call of this platform: accepted only signed with the credential,
for this platform, for this call (target and request id) and as it arrived."""

from __future__ import annotations

import pytest

from exchange.federation.peer import PeerClient
from exchange.federation.trust import ANSWER, AnswerVerifier, signer_for
from exchange.provider_auth import SignatureError

CREDENTIAL = "exps_gz_the-credential"
TARGET = "/api/v1/federation/topics/101001001/000003/query"
BODY = b'{"records":[{"credit_code":"91440101"}],"not_found":[]}'


def _signed(body: bytes = BODY, rid: str = "rid-1", credential: str = CREDENTIAL) -> str:
    # The peer signs its answer for the caller ("gdzsj"), over the call's target and id.
    return signer_for(credential, "gdzsj").sign(ANSWER, TARGET.encode(), body, rid)


def _client() -> PeerClient:
    return PeerClient("http://127.0.0.1:1", credential=CREDENTIAL, own_code="gdzsj", peer_code="gz")


def test_a_genuine_answer_is_accepted_every_time_it_is_checked() -> None:
    check = AnswerVerifier(CREDENTIAL, "gdzsj")
    signature = _signed()
    check.verify(TARGET.encode(), BODY, signature, "rid-1")
    answer = _client()._verified("rid-1", TARGET, BODY, 200, signature, "rid-1")
    assert (answer.status, answer.body, answer.request_id) == (200, BODY, "rid-1")


@pytest.mark.parametrize(
    ("signature", "body", "rid", "target", "code"),
    [
        (None, BODY, "rid-1", TARGET, "signature_required"),
        ("t=1,n=2", BODY, "rid-1", TARGET, "signature_malformed"),
        (_signed(credential="exps_gz_another"), BODY, "rid-1", TARGET, "signature_invalid"),
        (_signed(), BODY.replace(b"9144", b"9145"), "rid-1", TARGET, "signature_invalid"),
        (_signed(rid="rid-0"), BODY, "rid-1", TARGET, "signature_invalid"),
        (_signed(), BODY, "rid-1", TARGET.replace("000003", "000004"), "signature_invalid"),
    ],
    ids=["unsigned", "malformed", "wrong credential", "altered", "another call", "another topic"],
)
def test_a_forged_altered_or_misdirected_answer_is_refused(
    signature: str | None, body: bytes, rid: str, target: str, code: str
) -> None:
    with pytest.raises(SignatureError) as refused:
        AnswerVerifier(CREDENTIAL, "gdzsj").verify(target.encode(), body, signature, rid)
    assert (refused.value.status, refused.value.code) == (401, code)
    with pytest.raises(SignatureError) as also:
        _client()._verified(rid, target, body, 200, signature, rid)
    assert also.value.code == code


def test_an_answer_signed_for_another_platform_is_refused() -> None:
    # The same credential, but the signature's audience is the answering platform itself.
    signature = signer_for(CREDENTIAL, "gz").sign(ANSWER, TARGET.encode(), BODY, "rid-1")
    with pytest.raises(SignatureError):
        AnswerVerifier(CREDENTIAL, "gdzsj").verify(TARGET.encode(), BODY, signature, "rid-1")


def test_an_answer_naming_another_call_is_refused_before_its_signature() -> None:
    # A genuine answer to call rid-0, delivered for call rid-1 (replayed or crossed).
    with pytest.raises(SignatureError) as refused:
        _client()._verified("rid-1", TARGET, BODY, 200, _signed(rid="rid-0"), "rid-0")
    assert refused.value.code == "answer_unsigned"
