"""Schemathesis hooks for `make contract` (infra/contract.sh).

- Every request whose Idempotency-Key is well formed gets a fresh one: the fuzzer reuses the
  values it generated across different requests, which the API refuses by design (422); a
  malformed key is left alone, so the 400 is still exercised.
- The run's own key is never revoked or rotated, and the run's tenant is never suspended (the
  fuzzer reuses ids it sees in answers, and would otherwise lock the rest of the run out): such
  a request names a key or tenant that does not exist instead (answered 404, as declared). Keys
  the run created itself are fair game. Revoking, rotating and suspending the caller's own
  credentials are tested by the end-to-end suite.
"""

import os
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")
NO_SUCH_KEY = "key_" + "f" * 32


OWN_TENANT_ID = os.environ.get("HERALD_CONTRACT_TENANT_ID", "")
OWN_KEY_ID = os.environ.get("HERALD_CONTRACT_KEY_ID", "")
NO_SUCH_TENANT = "ten_" + "f" * 32


@schemathesis.hook
def before_call(ctx, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            headers[name] = uuid.uuid4().hex
    path = case.operation.path
    params = case.path_parameters if case.path_parameters is not None else {}
    # Revoking or rotating (with no overlap) the key the run holds would lock it out: such a
    # request names a key that does not exist (404). An unknown id (no key id given) is
    # treated the same, to be safe.
    if path.startswith("/v1/api-keys/{id}") and "id" in params:
        if not OWN_KEY_ID or OWN_KEY_ID in str(params["id"]):
            params["id"] = NO_SUCH_KEY
    # Nor may the operator routes suspend the run's own tenant.
    if path.startswith("/v1/tenants/{id}") and OWN_TENANT_ID in str(params.get("id", "")):
        params["id"] = NO_SUCH_TENANT
