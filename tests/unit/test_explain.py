"""`trainwatch explain` in-process: any bytes on stdin give a verdict or one usage error, never a
crash (the command as a user runs it is in the integration tests)."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs
from trainwatch.diagnostics.verdict import CATEGORIES

KNOWLEDGE = load_knowledge(include_user=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000) | st.text(max_size=2000).map(str.encode))
def test_garbage_never_crashes(data):
    # binary data is one usage error, as for a file; anything else gets a verdict
    try:
        diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))
    except UsageError as exc:
        assert str(exc) == "standard input: looks like binary data, not a text log"
        assert data.count(b"\x00") > len(data[:8192]) // 100
        return
    assert diagnosis.verdict.category in CATEGORIES
    json.dumps(diagnosis.to_dict(), default=str)
