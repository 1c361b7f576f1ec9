"""What every answer model shares."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    WithJsonSchema,
    model_serializer,
)


class Answer(BaseModel):
    """An answer's documented fields; fields the service adds later pass through to clients
    (extra="allow": a field is never dropped because a model has not caught up)."""

    model_config = ConfigDict(extra="allow")


class SometimesAbsent(Answer):
    """An answer some of whose fields a route leaves out at times (those with a default): a field
    the route did not give stays out of the answer rather than appearing as null.

    Only for small answers: the check runs in Python for each instance (on a list of thousands it
    cost 30 times the serialization itself).
    """

    @model_serializer(mode="wrap")
    def _given_fields_only(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):
        # No return annotation: the JSON schema of the answer stays the model's own.
        data = handler(self)
        fields = type(self).model_fields
        for name in fields.keys() - self.model_fields_set:
            field = fields[name]
            data.pop((field.serialization_alias or field.alias or name) if info.by_alias else name, None)
        return data


def standalone(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema standing alone: its $defs resolved in place (a schema given by hand cannot name
    components), without titles (generated clients name inline classes after where they are, not
    after a title that would clash with the components')."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items() if k != "title"}
        return [resolve(v) for v in node] if isinstance(node, list) else node

    return resolve(schema)


def passed_through(kind: Any) -> Any:
    """A nullable part of an answer passed through as the service wrote it (not validated, its keys
    in their order), documented as `kind`: for parts an unvalidated fast path answers too."""
    documented = {"anyOf": [standalone(TypeAdapter(kind).json_schema()), {"type": "null"}]}
    return Annotated[dict[str, Any] | None, WithJsonSchema(documented)]
