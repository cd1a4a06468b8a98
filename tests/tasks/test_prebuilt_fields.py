"""tasks.prebuilt_fields: each serializer instance has fields of its own, and they
behave exactly like the fields DRF builds for every instance."""

import copy
import threading
from typing import Any

import pytest
from django.utils.functional import Promise
from rest_framework import serializers

from tasks.prebuilt_fields import PrebuiltFieldsSerializer
from tasks.serializers import TaskCompleteSerializer, TaskSerializer

IMMUTABLE = (str, bytes, int, float, bool, type(None), Promise, type)


class DrfBuiltTaskSerializer(TaskSerializer):
    """TaskSerializer with DRF's own per-instance building: the plain way to compare."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return serializers.ModelSerializer.get_fields(self)

    def get_validators(self) -> list[Any]:
        return serializers.ModelSerializer.get_validators(self)


def all_fields(serializer: serializers.Serializer) -> dict[str, serializers.Field]:
    """The serializer's fields and, under `<name>.child`, a list field's child."""
    found = dict(serializer.fields)
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListField):
            found[f"{name}.child"] = field.child
    return found


def mutable_objects(value: Any, found: dict[int, Any], *, validators: bool = False) -> None:
    """Every object a field holds that could change, by id, but the validators (shared
    by DRF's own copies too) and the serializer it is bound to."""
    if isinstance(value, IMMUTABLE) or id(value) in found:
        return
    if isinstance(value, serializers.BaseSerializer):
        return  # the field's own serializer: checked by identity in the tests
    if not validators and not isinstance(value, tuple):  # a tuple's items are checked
        found[id(value)] = value
    if isinstance(value, serializers.Field):
        for name, item in vars(value).items():
            mutable_objects(item, found, validators=name == "_validators")
    elif isinstance(value, dict):
        for key, item in value.items():
            mutable_objects(item, found, validators=key == "validators")
    elif isinstance(value, list | tuple):
        for item in value:
            mutable_objects(item, found, validators=validators)


@pytest.mark.parametrize("serializer_class", [TaskSerializer, TaskCompleteSerializer])
def test_two_serializers_share_no_field_and_no_mutable_object(serializer_class):
    first, second = serializer_class(data={}), serializer_class(data={})
    first_fields, second_fields = all_fields(first), all_fields(second)

    assert first_fields.keys() == second_fields.keys()
    for name, field in first_fields.items():
        assert field is not second_fields[name], name
        assert field.root is first, name
        assert second_fields[name].root is second, name
    held_by_first: dict[int, Any] = {}
    held_by_second: dict[int, Any] = {}
    for field in first.fields.values():
        mutable_objects(field, held_by_first)
    for field in second.fields.values():
        mutable_objects(field, held_by_second)
    shared = held_by_first.keys() & held_by_second.keys()
    assert [held_by_first[key] for key in shared] == []


def test_the_check_finds_what_a_shallow_copy_would_share():
    # A copy.copy of a field keeps its error messages, style and list of validators.
    first = TaskSerializer(data={})
    shallow = {name: copy.copy(field) for name, field in first.fields.items()}
    held_by_first: dict[int, Any] = {}
    held_by_shallow: dict[int, Any] = {}
    for field in first.fields.values():
        mutable_objects(field, held_by_first)
    for field in shallow.values():
        mutable_objects(field, held_by_shallow)

    assert held_by_first.keys() & held_by_shallow.keys()


def test_fields_are_made_anew_for_each_instance_not_built_again():
    first: Any = TaskSerializer().fields["tags"]
    second: Any = TaskSerializer().fields["tags"]

    assert first.child.parent is first
    assert first._kwargs["child"] is first.child
    assert second.child.parent is second
    assert second.child is not first.child
    assert "_field_copiers" in TaskSerializer.__dict__
    assert "_field_copiers" not in DrfBuiltTaskSerializer.__dict__


def test_concurrent_serializers_keep_their_own_fields_and_context():
    # gthread workers share the class's copiers: a subclass starts with none, so the
    # threads also race to build them.
    class Fresh(TaskSerializer):
        pass

    threads, rounds = 8, 20
    barrier = threading.Barrier(threads, timeout=30)  # a thread that raised breaks it
    failures: list[str] = []

    def write(number: int) -> None:
        try:
            check(number)
        except Exception as error:
            barrier.abort()
            failures.append(f"{number}: {error!r}")

    def check(number: int) -> None:
        for _ in range(rounds):
            serializer = Fresh(
                data={"title": f"task {number}", "tags": [f"tag {number}"] * 2},
                context={"number": number},
            )
            barrier.wait()
            valid = serializer.is_valid()
            barrier.wait()
            fields = all_fields(serializer)
            if not valid or serializer.validated_data["title"] != f"task {number}":
                failures.append(f"{number}: {serializer.errors or serializer.validated_data}")
            if serializer.validated_data.get("tags") != [f"tag {number}"]:
                failures.append(f"{number}: tags {serializer.validated_data.get('tags')}")
            for name, field in fields.items():
                if field.root is not serializer or field.context["number"] != number:
                    failures.append(f"{number}: {name} belongs to another serializer")

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []


def test_fields_are_those_drf_builds():
    ours, drf = all_fields(TaskSerializer()), all_fields(DrfBuiltTaskSerializer())
    per_instance = {"_creation_counter", "parent", "_kwargs", "child", "_validators"}

    assert ours.keys() == drf.keys()
    for name, field in ours.items():
        plain = drf[name]
        assert type(field) is type(plain), name
        assert repr(field) == repr(plain), name
        assert vars(field)["_kwargs"].keys() == vars(plain)["_kwargs"].keys(), name
        assert [type(v) for v in field.validators] == [type(v) for v in plain.validators], name
        state = {key: value for key, value in vars(field).items() if key not in per_instance}
        plain_state = {key: value for key, value in vars(plain).items() if key not in per_instance}
        assert state == plain_state, name
    assert TaskSerializer().validators == DrfBuiltTaskSerializer().validators


BODIES = [
    {"title": "Buy milk"},
    {
        "title": "  Buy milk ",
        "description": "two",
        "priority": "high",
        "category": "work",
        "due_date": "2026-12-01",
        "tags": ["a", "b", "a"],
        "position": 3,
        "completed": True,
        "id": "ignored",
        "user_id": "ignored",
        "version": 9,
    },
    {},
    {"title": ""},
    {"title": "   "},
    {"title": 12, "description": 1.5, "completed": "yes", "position": "5"},
    {"title": "x" * 201, "tags": ["x" * 51, " "] + ["t"] * 20},
    {"title": "x", "priority": "urgent", "category": None, "due_date": "20261201"},
    {"title": "x", "position": -1, "tags": "a,b", "description": None, "due_date": None},
    {"title": "x", "position": 2**31, "due_date": "2026-02-30", "tags": [1]},
    {"title": "x\x00y"},
    [],
    "a string",
]


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("body", BODIES)
def test_validation_is_drfs(body, partial):
    ours = TaskSerializer(data=body, partial=partial)
    drf = DrfBuiltTaskSerializer(data=body, partial=partial)

    assert ours.is_valid() == drf.is_valid()
    assert ours.errors == drf.errors
    if drf.errors == {}:
        assert ours.validated_data == drf.validated_data


@pytest.mark.parametrize("body", [{}, {"completed": False}, {"completed": "yes"}, [], None])
def test_the_toggle_body_is_checked_as_drf_does(body):
    class DrfBuilt(TaskCompleteSerializer):
        def get_fields(self) -> dict[str, serializers.Field]:
            return serializers.Serializer.get_fields(self)

    ours, drf = TaskCompleteSerializer(data=body), DrfBuilt(data=body)

    assert ours.is_valid() == drf.is_valid()
    assert ours.errors == drf.errors


def test_a_subclass_builds_its_own_fields():
    class Renamed(PrebuiltFieldsSerializer):
        name = serializers.CharField(max_length=3)

    class Longer(Renamed):
        name = serializers.CharField(max_length=5)

    assert not Renamed(data={"name": "abcd"}).is_valid()
    assert Longer(data={"name": "abcd"}).is_valid()
    name: Any = Renamed(data={"name": "abcd"}).fields["name"]
    assert name.max_length == 3
