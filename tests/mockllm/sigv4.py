"""Verifies AWS SigV4 request signatures by recomputing them with botocore's own SigV4Auth
over the request as received, using the mock's demo credentials."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ACCESS_KEY = "AKIAWEIRMOCKDEMO0000"
SECRET_KEY = "weir-mock-secret-access-key"
SERVICE = "bedrock"
MAX_SKEW = dt.timedelta(minutes=15)

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]{64})$")


class AuthError(Exception):
    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


class _Recompute(SigV4Auth):
    """SigV4Auth, but signing exactly the headers the client said it signed."""

    def __init__(self, credentials, service, region, signed):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                hm[name.lower()] = value
        return hm


def verify(method: str, path_qs: str, headers: dict[str, str], body: bytes) -> str:
    """Return the access key on success; raise AuthError otherwise."""
    m = _AUTH.match(headers.get("authorization", "").strip())
    if not m:
        raise AuthError("MissingAuthenticationTokenException" if "authorization" not in headers
                        else "IncompleteSignatureException",
                        "Authorization header requires a valid AWS4-HMAC-SHA256 signature "
                        "(Credential, SignedHeaders, Signature).")
    parts = m["cred"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthError("IncompleteSignatureException", f"Credential scope is malformed: {m['cred']}")
    access_key, date, region, service, _ = parts
    if access_key != ACCESS_KEY:
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    if service != SERVICE:
        raise AuthError("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'.")
    signed = m["signed"].split(";")
    if "host" not in signed:
        raise AuthError("InvalidSignatureException", "'Host' must be a signed header.")
    missing = [h for h in signed if h not in headers]
    if missing:
        raise AuthError("InvalidSignatureException", f"Signed header(s) not present in the request: {missing}")
    amz_date = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise AuthError("IncompleteSignatureException", "X-Amz-Date header is missing or not in ISO8601 basic format.")
    if "x-amz-date" not in signed:
        raise AuthError("InvalidSignatureException", "X-Amz-Date must be a signed header.")
    if amz_date[:8] != date:
        raise AuthError("InvalidSignatureException", "Credential date does not match X-Amz-Date.")
    if abs(dt.datetime.now(dt.timezone.utc) - when) > MAX_SKEW:
        raise AuthError("InvalidSignatureException", "Signature expired: X-Amz-Date is more than 15 minutes off.")
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise AuthError("InvalidSignatureException", "x-amz-content-sha256 does not match the request body.")

    # The URL's scheme only decides payload signing in botocore: http keeps it always signed.
    req = AWSRequest(method=method, url=f"http://{headers['host']}{path_qs}",
                     headers={k: v for k, v in headers.items()}, data=body)
    req.context["timestamp"] = amz_date
    auth = _Recompute(Credentials(ACCESS_KEY, SECRET_KEY), service, region, set(signed))
    canonical = auth.canonical_request(req)
    expected = auth.signature(auth.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, m["sig"]):
        raise AuthError("InvalidSignatureException",
                        "The request signature we calculated does not match the signature you provided. "
                        "Check your AWS Secret Access Key and signing method.")
    return access_key
