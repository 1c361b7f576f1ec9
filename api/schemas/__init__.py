"""The API's answers as pydantic models: what each JSON route returns, for the OpenAPI document and
the clients generated from it (docs/api.md). Routes declare them with `response_model`."""
