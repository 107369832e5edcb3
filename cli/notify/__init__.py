"""Telling someone who is not watching the terminal: webhook notifications when the run ends (and,
when asked, when it stalls or its loss first turns NaN), warnings for `--on-nan warn`, and the
`--on-exit` command (docs/live.md).

`config.py` merges the settings (command line, environment, config file); `formats.py` writes one
message for Slack, Discord, Teams or plain JSON; `sender.py` posts it; `onexit.py` runs the exit
command. Nothing here may touch the run or its exit status: each post runs in a thread of its own
with a bounded timeout, a failure is one warning line, and at the end trainwatch waits for the
posts a bounded time. Messages are built from the report's outline (cli/reports/outline.py) of a
diagnosis already redacted; live events and the command line go through the same redaction.
"""
