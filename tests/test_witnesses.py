"""The contract-space witnesses (conformance/generate/witnesses.py): valid keys that a folding destination merges,
hostile metadata in every routing key, and the evidence labels that say a read-back kept them apart."""

import unicodedata

from conformance.contract.clauses import WITNESS_KEY_EVIDENCE, required_evidence
from conformance.execute.labels import round_trip_labels
from conformance.generate.witnesses import (
    HOSTILE_METADATA_VALUES,
    ROUTING_METADATA_KEYS,
    WITNESS_KEY_GROUPS,
    WITNESS_KEYS,
    partners,
    witness_key_labels,
    witness_metadata,
    witness_records,
)
from harness import Registration
from harness.keys import key_problem
from reference import registration as reference


def test_every_witness_key_is_a_valid_distinct_key() -> None:
    """A destination must accept each (CONTRACT.md, Keys), and no two are the same bytes."""
    assert [key for key in WITNESS_KEYS if key_problem(key) is not None] == []
    assert len(set(WITNESS_KEYS)) == len(WITNESS_KEYS)


def test_each_folding_merges_keys_of_its_group() -> None:
    """NFC, case folding and Windows' trimming each map two witness keys to one name; the dot group is dot-led."""
    def merged(fold: object) -> bool:
        names = [fold(k.decode()) for k in WITNESS_KEYS]  # type: ignore[operator]
        return len(set(names)) < len(names)

    assert merged(lambda t: unicodedata.normalize("NFC", t))
    assert merged(lambda t: unicodedata.normalize("NFD", t))
    assert merged(str.casefold)
    assert merged(str.lower)
    assert merged(lambda t: t.rstrip(". "))
    assert all(k.startswith(".") for k in WITNESS_KEY_GROUPS["dot-leading keys"])
    assert ".env" in WITNESS_KEY_GROUPS["dot-leading keys"]


def test_partners_come_from_the_group_equivalents_first() -> None:
    assert partners("e\u0301".encode())[0] == "\u00e9".encode()
    assert partners(b"A")[0] == b"a"
    assert partners(b"not a witness") == []


def test_witness_metadata_puts_every_hostile_value_in_every_standard_key() -> None:
    maps = witness_metadata()
    for value in HOSTILE_METADATA_VALUES:
        assert any(all(m[key] == value for key in ROUTING_METADATA_KEYS) for m in maps), value
    assert all("\x00" not in v for m in maps for v in m.values())
    assert "opencdc.collection" in ROUTING_METADATA_KEYS and "../escaped" in HOSTILE_METADATA_VALUES
    absolute = witness_metadata("/scratch/t")
    assert any(m["opencdc.collection"] == "/scratch/t/w1/w2" for m in absolute)


def test_witness_records_carry_every_key_and_every_metadata_map() -> None:
    batch = witness_records()
    assert {r.key.bytes() for r in batch if r.key is not None} == set(WITNESS_KEYS)
    assert len({r.payload.after.bytes() for r in batch if r.payload.after is not None}) == len(batch)
    assert [r.metadata for r in batch if r.metadata] == witness_metadata()


def test_the_labels_need_both_keys_of_a_pair_stored() -> None:
    """A key alone proves nothing about merging: the label comes only with its equivalent held beside it."""
    nfd, nfc = "e\u0301".encode(), "\u00e9".encode()
    assert witness_key_labels([nfd], {nfd}) == []
    assert witness_key_labels([nfd], {nfd, nfc}) == ["keys equal under Unicode normalization"]
    assert witness_key_labels([b"A"], {b"A", b"a"}) == ["keys equal under case folding"]
    assert witness_key_labels([b"t."], {b"t", b"t."}) == ["keys equal under Windows' trimming"]
    assert witness_key_labels([b".env"], {b".env"}) == ["dot-leading key"]
    assert witness_key_labels([b".env"], set()) == []  # not stored: no evidence


def test_the_witness_batch_gives_every_witness_label() -> None:
    batch = witness_records()
    assert set(WITNESS_KEY_EVIDENCE) <= set(round_trip_labels(batch, set()))


def test_declared_keys_need_no_witness_evidence() -> None:
    """A registration with its own valid keys is not charged for keys it may not accept."""
    assert set(WITNESS_KEY_EVIDENCE) <= set(required_evidence("write.round-trip", reference))
    assert "witness keys kept across the events" in required_evidence("lifecycle.events", reference)
    declared = Registration(factory=reference.factory, config=dict(reference.config), read_back=reference.read_back,
                            valid_keys=object())
    assert not set(WITNESS_KEY_EVIDENCE) & set(required_evidence("write.round-trip", declared))
    assert "witness keys kept across the events" not in required_evidence("lifecycle.events", declared)
