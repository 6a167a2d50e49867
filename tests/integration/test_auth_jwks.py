"""Production token verification: keys fetched from an identity provider's JWKS over HTTP."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import InvalidToken, OrganisationKind, Role, TokenVerifier, mint_token
from tests.unit.app_under_test import settings

pytestmark = pytest.mark.integration


@pytest.fixture
def identity_provider():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="council-idp-1", use="sig", alg="RS256")
    body = json.dumps({"keys": [jwk]}).encode()

    class JWKS(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def test_tokens_are_verified_against_the_jwks(identity_provider) -> None:
    key, url = identity_provider
    now = datetime.now(UTC)
    claims = {
        "sub": "idp-user-7",
        "org": "E09000012",
        "org_kind": "council",
        "roles": ["caseworker"],
        "iss": "https://idp.example",
        "aud": "upstream",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    verifier = TokenVerifier(settings(jwt_jwks_url=url, jwt_issuer="https://idp.example"))
    signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "council-idp-1"})
    principal = verifier.verify(signed)
    assert (principal.organisation, principal.kind, principal.roles) == (
        "E09000012",
        OrganisationKind.COUNCIL,
        frozenset({Role.CASEWORKER}),
    )

    # The development key means nothing to a deployment that trusts its identity provider.
    local = mint_token(
        settings(jwt_issuer="https://idp.example"),
        subject="x",
        organisation="E09000012",
        kind=OrganisationKind.COUNCIL,
        roles=[Role.CASEWORKER],
    )
    with pytest.raises(InvalidToken):
        verifier.verify(local)
    # Nor does a key the provider never published.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(
            jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "council-idp-1"})
        )
