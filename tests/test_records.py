"""The light frozen records the cron path uses instead of dataclasses."""

from __future__ import annotations

import pickle

import pytest

from durability.records import Record, asdict, factory, field, field_types, fields, replace


class Member(Record):
    device: str
    flags: frozenset[str] = frozenset()
    notes: list[str] = factory(list)
    size: int | None = field(None, metadata={"unit": "bytes"})


class Spare(Member):
    waiting: bool = True


def test_record_keyword_and_positional_construction_with_defaults() -> None:
    a = Member("sda1")
    b = Member(device="sda1", flags=frozenset())
    assert a == b and a.flags == frozenset() and a.size is None
    assert Member("sdb1", frozenset({"W"})).flags == {"W"}


def test_record_factory_gives_each_record_its_own_default() -> None:
    a, b = Member("sda1"), Member("sdb1")
    a.notes.append("x")
    assert b.notes == []


def test_record_is_frozen() -> None:
    member = Member("sda1")
    with pytest.raises(AttributeError, match="frozen"):
        member.device = "sdb1"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del member.device


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing field 'device'"),
        (("a", frozenset(), [], None, "extra"), {}, "takes 4 fields"),
        (("a",), {"device": "b"}, "twice"),
        ((), {"device": "a", "colour": "red"}, "no field 'colour'"),
    ],
)
def test_record_construction_errors_name_the_field(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Member(*args, **kwargs)  # type: ignore[arg-type]


def test_record_equality_and_hash_follow_the_values() -> None:
    assert Member("a") == Member("a") and Member("a") != Member("b")
    assert hash(Member("a")) == hash(Member("a"))
    assert Member("a") != Spare("a")  # another class is never equal
    assert len({Member("a"), Member("a"), Member("b")}) == 2


def test_record_replace_copies_with_changes_and_keeps_the_original() -> None:
    original = Member("a", frozenset({"F"}))
    changed = replace(original, device="b")
    assert changed.device == "b" and changed.flags == {"F"} and original.device == "a"
    with pytest.raises(TypeError):
        replace(original, colour="red")


def test_record_subclass_inherits_fields_in_order() -> None:
    assert fields(Spare) == ("device", "flags", "notes", "size", "waiting")
    spare = Spare("sdc1")
    assert spare.waiting is True and asdict(spare)["device"] == "sdc1"


def test_record_field_types_are_evaluated() -> None:
    types = field_types(Member)
    assert types["device"] is str and types["size"] == (int | None)


def test_record_repr_and_pickle_round_trip() -> None:
    member = Member("sda1", frozenset({"W"}))
    assert repr(member).startswith("Member(device='sda1'")
    assert pickle.loads(pickle.dumps(member)) == member


def test_record_dataclasses_replace_works() -> None:
    import dataclasses

    assert dataclasses.replace(Member("a"), device="b") == Member("b")  # type: ignore[type-var]
