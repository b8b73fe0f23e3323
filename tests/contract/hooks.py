"""Schemathesis hooks for tests/contract/run.

The OpenAPI document states every rule the server holds a single field to, so a
schema-valid request the server refuses is a contract failure. A few rules tie
one part of a request to another, or to what the server holds or remembers, and
JSON Schema cannot state them; a request that breaks one is refused for what it
means, not for its shape. Those refusals, and only those, are not failures.
"""

import itertools
import re

import schemathesis

# 400 VALIDATION_FAILED for these, by the message that names the rule:
RELATIONS = (
    # A hall's category keys, section keys, row labels (in a section) and seat
    # numbers (in a row) are each used once.
    "is listed twice",
    # Every category of a show has the same currency.
    "every category of a show must use one currency",
    # A category a section, row or seat names is one of the layout's; with
    # several categories every seat needs one.
    "unknown category",
    "needs a category",
    # Sections placed with x/y must not overlap.
    "would be drawn on top of seat",
    # All rows together hold at most MAX_SEATS_PER_SHOW seats.
    "more than MAX_SEATS_PER_SHOW",
    # best_available.category must be a category of the show being booked.
    "this show has no category",
    # A sale window closes after it opens (with PATCH, counting the side the
    # show already has).
    "sales_close_at must be after sales_open_at",
    # A waiting room's pre-queue opens at or before the sale.
    "must be at or before sales_open_at",
)

# Refusals that depend on what the server remembers, not on the request.
HISTORY = (
    # The Idempotency-Key was used before, for a different request (a case
    # schemathesis sends again with another body, say).
    "IDEMPOTENCY_KEY_REUSED",
)


def _whole_numbers_as_integers(value):
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers_as_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers_as_integers(item) for key, item in value.items()}
    return value


@schemathesis.hook
def map_body(context, body):
    """Writes `2.0` as `2`. JSON Schema counts both as the integer 2 and so
    generates either; the server reads an integer only as written without a
    fraction (as serde does), which no schema keyword can say. Whether a value
    is valid does not change, only how it is spelled."""
    return _whole_numbers_as_integers(body)


_KEY = re.compile(r"^[!-~]{1,200}$")
_requests = itertools.count()


@schemathesis.hook
def map_headers(context, headers):
    """Gives each request a key of its own, as a client does: generated keys
    repeat ("0", "A"), and a key sent again with another request is refused for
    that (below), which would leave few bookings made. A key that breaks the rule
    stays as it is."""
    key = (headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _KEY.match(key):
        headers["Idempotency-Key"] = f"{key[:180]}.{next(_requests)}"
    return headers


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure except a refusal of a valid request for a relation."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    if not isinstance(body, dict):
        return True
    code, error = body.get("code", ""), body.get("error", "")
    if code in HISTORY:
        return False
    if code == "VALIDATION_FAILED" and any(rule in error for rule in RELATIONS):
        return False
    return True
