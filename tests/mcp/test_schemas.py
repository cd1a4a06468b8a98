"""MCP's tool schemas and the REST serializer describe the same Task: a field or a choice
added to one and forgotten in the other fails here."""

from typing import Any

import anyio
import pytest
from rest_framework import serializers

from mcp_server.server import server
from tasks.serializers import TaskSerializer

# Arguments that address the task or the write rather than a field of it.
NOT_FIELDS = {"create_task": set(), "update_task": {"task_id", "if_match"}}


def tool_schemas() -> dict[str, Any]:
    return {tool.name: tool for tool in anyio.run(server.list_tools)}


def enum(schema: dict[str, Any]) -> list[str] | None:
    """The allowed values of a (possibly nullable) argument's schema."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option:
            return option["enum"]
    return None


@pytest.fixture(scope="module")
def tools() -> dict[str, Any]:
    return tool_schemas()


WRITABLE = {name: field for name, field in TaskSerializer().fields.items() if not field.read_only}


@pytest.mark.parametrize("tool", sorted(NOT_FIELDS))
def test_write_tools_take_the_serializers_writable_fields(tools, tool):
    arguments = tools[tool].input_schema["properties"]
    assert set(arguments) - NOT_FIELDS[tool] == set(WRITABLE)


@pytest.mark.parametrize("tool", sorted(NOT_FIELDS))
def test_choice_arguments_allow_the_serializers_choices(tools, tool):
    arguments = tools[tool].input_schema["properties"]
    choice_fields = {
        name: list(field.choices)
        for name, field in WRITABLE.items()
        if isinstance(field, serializers.ChoiceField)
    }
    assert choice_fields  # priority and category
    for name, choices in choice_fields.items():
        assert enum(arguments[name]) == choices, name


def test_a_task_result_has_the_serializers_fields_and_choices(tools):
    task = tools["get_task"].output_schema["$defs"]["TaskData"]["properties"]
    assert set(task) == set(TaskSerializer().fields)
    for name, field in TaskSerializer().fields.items():
        if isinstance(field, serializers.ChoiceField):
            assert enum(task[name]) == list(field.choices), name
