"""A registration's strategies (keys, payloads, batches), each made once: hypothesis caches its work per strategy."""

from typing import cast

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance.generate.model import key_bytes
from conformance.generate.seeded import sized_batches
from conformance.generate.strategies import _assemble, as_key, as_payload, payloads, struct_payloads, valid_keys
from harness import Operation, Record, Registration
from harness.records import Data

__all__ = ["valid_keys_of", "payloads_of", "batches_of", "distinct_records_of"]


def valid_keys_of(registration: Registration) -> SearchStrategy[Data]:
    """The registration's valid keys, or the contract's."""
    keys = registration.valid_keys
    # as_key passes None through for invalid keys; a valid key is never None.
    return cast("SearchStrategy[Data]", as_key(keys if keys is not None else valid_keys()))


def payloads_of(registration: Registration) -> SearchStrategy[Data]:
    """The registration's payloads, or those its transport carries unchanged."""
    if registration.payloads is not None:
        return as_payload(registration.payloads)
    return struct_payloads() if registration.structured_data == "protobuf-struct" else payloads()


_BATCHES: dict[tuple[int, int, int], tuple[Registration, SearchStrategy[list[Record]]]] = {}
_DISTINCT: dict[tuple[int, int], tuple[Registration, SearchStrategy[list[Record]]]] = {}


def batches_of(registration: Registration, min_size: int, max_size: int) -> SearchStrategy[list[Record]]:
    """The registration's batch strategy, made once per size range (hypothesis caches its work per strategy)."""
    made = _BATCHES.get((id(registration), min_size, max_size))
    if made is None or made[0] is not registration:
        fresh_payloads = registration.payloads is None and registration.structured_data == "json"
        strategy = sized_batches(valid_keys_of(registration), payloads_of(registration), min_size, max_size,
                                 fresh_keys=registration.valid_keys is None, fresh_payloads=fresh_payloads)
        made = _BATCHES[(id(registration), min_size, max_size)] = (registration, strategy)
    return made[1]


def distinct_records_of(registration: Registration, size: int) -> SearchStrategy[list[Record]]:
    """Up to `size` records of the registration's keys, each of a key of its own and none a delete (made once)."""
    made = _DISTINCT.get((id(registration), size))
    if made is None or made[0] is not registration:
        record = st.builds(_assemble, st.sampled_from([o for o in Operation if o is not Operation.delete]),
                           valid_keys_of(registration), st.just({}), payloads_of(registration),
                           st.none())
        fresh = registration.valid_keys is None  # SPEC's keys: plenty of distinct ones
        strategy = st.lists(record, min_size=size if fresh else 2, max_size=size,
                            unique_by=lambda r: key_bytes(r.key))
        made = _DISTINCT[(id(registration), size)] = (registration, strategy)
    return made[1]
