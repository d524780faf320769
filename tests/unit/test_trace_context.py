from __future__ import annotations

import pytest

from tenantry.lib.observe import incoming_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_a_well_formed_traceparent_names_the_trace_and_the_callers_span() -> None:
    assert incoming_trace(f"00-{TRACE}-{PARENT}-01") == {
        "trace_id": TRACE,
        "parent_span_id": PARENT,
    }


def test_a_later_version_may_append_fields() -> None:
    assert incoming_trace(f"01-{TRACE}-{PARENT}-00-extra")["trace_id"] == TRACE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper case is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # the all-zero trace id is invalid
        f"00-{TRACE}-{'0' * 16}-01",  # and so is the all-zero span id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE}-{PARENT}-01\x00",
    ],
)
def test_a_malformed_traceparent_is_ignored(header: str | None) -> None:
    assert incoming_trace(header) == {}
