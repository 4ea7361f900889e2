"""Replay: rebuild every projection from the log alone, switch reads to it, or compare it with the live one.

`replay.core` is the same on every log (progress, the rebuild in memory, the comparison);
`replay.embedded` and `replay.kafka` each own one log's replay and verify. Settings come in as
arguments: nothing here imports the command layer (`tajo_events`), which only parses the command
line and calls in.
"""
