"""A serializer's fields built once per class, then copied for each instance.

Replaces DRF's per-instance building: `Serializer.get_fields` deep-copies the declared
fields (each copy runs the field's `__init__` again) and `ModelSerializer.get_fields`
first inspects the model. Neither depends on anything but the class. Each instance still
gets fields of its own, since `bind()` ties a field to its serializer and so to one
request's context: a copy shares with the fields built for the class only values that
cannot change, and the validators, which DRF's own deepcopy shares too (they keep no
state). Every other attribute is copied: containers anew, a field (a ListField's child)
by the same rule, anything else by `copy.deepcopy`.
"""

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from django.utils.functional import Promise
from rest_framework import serializers

# What a copy may share as it is: none of these can change.
_IMMUTABLE = (str, bytes, int, float, bool, type(None), Promise, type)

# The copies made so far for one instance (by the copier's id): a ListField's child
# names its parent, which must be the new ListField.
_Memo = dict[int, serializers.Field]
_Copier = Callable[[_Memo], Any]


class _FieldCopier:
    """Copies of one field, as it was built for the class."""

    def __init__(self, field: serializers.Field, copiers: dict[int, "_FieldCopier"]) -> None:
        copiers[id(field)] = self
        self.field_class = type(field)
        self.shared: dict[str, Any] = {}
        self.copied: list[tuple[str, _Copier]] = []
        for name, value in vars(field).items():
            copier = _copier(value, copiers, validators=name == "_validators")
            if copier is None:
                self.shared[name] = value
            else:
                self.copied.append((name, copier))

    def __call__(self, memo: _Memo) -> serializers.Field:
        made = memo.get(id(self))
        if made is not None:
            return made
        field = object.__new__(self.field_class)
        memo[id(self)] = field
        state = self.shared.copy()
        for name, copier in self.copied:
            state[name] = copier(memo)
        field.__dict__.update(state)
        return field


def _copier(value: Any, copiers: dict[int, _FieldCopier], *, validators: bool) -> _Copier | None:
    """How to copy one value of a field; None when it is shared as it is."""
    if isinstance(value, _IMMUTABLE):
        return None
    if isinstance(value, serializers.Field) and not isinstance(value, serializers.BaseSerializer):
        return copiers.get(id(value)) or _FieldCopier(value, copiers)
    if type(value) in (list, tuple, dict):
        items = value.items() if type(value) is dict else enumerate(value)
        parts = {
            key: None if validators else _copier(item, copiers, validators=key == "validators")
            for key, item in items
        }
        if all(part is None for part in parts.values()):
            if type(value) is tuple:
                return None
            return lambda memo: value.copy()
        return lambda memo: _rebuild(value, parts, memo)
    return lambda memo: copy.deepcopy(value)  # what DRF does with an argument it does not know


def _rebuild(value: Any, parts: dict[Any, _Copier | None], memo: _Memo) -> Any:
    made = {key: value[key] if part is None else part(memo) for key, part in parts.items()}
    return made if type(value) is dict else type(value)(made.values())


class PrebuiltFieldsSerializer(serializers.Serializer):
    """`get_fields` and `get_validators` worked out once per class; each instance gets
    its own copy of the fields and its own list of the (stateless) validators."""

    _field_copiers: ClassVar[dict[str, _FieldCopier]]
    _class_validators: ClassVar[tuple[Any, ...]]

    def get_fields(self) -> dict[str, serializers.Field]:
        # The class's own attribute: a subclass builds its own fields.
        copiers = type(self).__dict__.get("_field_copiers")
        if copiers is None:
            built: dict[int, _FieldCopier] = {}
            copiers = {name: _FieldCopier(f, built) for name, f in super().get_fields().items()}
            type(self)._field_copiers = copiers  # a racing thread builds the same
        memo: _Memo = {}
        return {name: copier(memo) for name, copier in copiers.items()}

    def get_validators(self) -> list[Any]:
        validators = type(self).__dict__.get("_class_validators")
        if validators is None:
            validators = tuple(super().get_validators())
            type(self)._class_validators = validators
        return list(validators)
