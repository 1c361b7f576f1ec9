"""What every answer model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SerializationInfo, SerializerFunctionWrapHandler, model_serializer


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
