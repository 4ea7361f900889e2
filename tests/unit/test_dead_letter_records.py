"""Dead-letter records on Kafka: the headers say what the entry is, and a record without them still lists."""

from eventlog.dead_letters import (
    dead_topic,
    entry_of,
    header_map,
    headers_of,
    read_retry_note,
    retried_topic,
    retry_note,
    safe_error,
)


def test_the_headers_of_a_dead_letter_give_back_its_entry() -> None:
    headers = headers_of(
        "event",
        error_type="KeyError",
        error="'campaign'\nmore detail",
        source_topic="tajo.events",
        source_partition=2,
        source_offset=41,
        at_ms=1_767_225_600_000,
    )
    entry = entry_of(
        "event", 7, timestamp_ms=1, key=b"jane@example.com", value=b"{}", headers=header_map(headers)
    )
    assert entry.id == "event:7"
    assert (entry.source_topic, entry.source_partition, entry.source_offset) == ("tajo.events", 2, 41)
    assert entry.at_ms == 1_767_225_600_000
    assert entry.summary == "KeyError: 'campaign'"
    assert entry.document()["record"] == {}


def test_an_action_dead_lettered_before_these_headers_still_lists_with_its_record_time() -> None:
    entry = entry_of("action", 0, timestamp_ms=5, key=b"", value=b"not json", headers=header_map(None))
    assert (entry.error_type, entry.at_ms, entry.source_offset) == ("unknown", 5, None)
    assert entry.document()["record"] == "not json"


def test_a_retry_note_names_the_entry_it_retried_and_when() -> None:
    assert read_retry_note(*retry_note(12, 1_767_225_600_000)) == (12, 1_767_225_600_000)
    assert read_retry_note(b"junk", b"1") is None
    assert dead_topic("tajo.actions") == "tajo.actions.dead"
    assert retried_topic("tajo.actions") == "tajo.actions.dead.retried"


def test_an_error_kept_in_a_dead_letter_has_no_key_token_or_full_email() -> None:
    kept = safe_error("refused for jane.doe@example.com with api-key: xkeysib-abc123 and Bearer t0k3n")
    assert "jane.doe@" not in kept
    assert "xkeysib-abc123" not in kept
    assert "t0k3n" not in kept
