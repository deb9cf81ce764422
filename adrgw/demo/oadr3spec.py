"""The OpenADR 3.1.0 OpenAPI file as a validator of live messages (test and demo use only).

The test VTN (``adrgw.demo.vtn31``) hands every request a VEN sends and every answer it gives to
:class:`SpecValidator`, which checks them against the operation the spec defines for that method and
path: the query parameters, the request body, the status code and the response body. The schemas are
OpenAPI 3.0 (``nullable``, ``format: date-time``, ``int32``...), so they are checked with
``openapi-schema-validator``'s OAS 3.0 validator (jsonschema underneath) rather than a plain JSON Schema
validator that would ignore ``nullable`` and so accept or refuse the wrong things.

The gateway itself never imports this module: the spec and these libraries are test requirements
(requirements-dev.txt). ``yaml`` and ``openapi_schema_validator`` are imported when a validator is built.

Where the 3.1.0 file contradicts itself, the validator follows one reading and says so here (and in
``SPEC_DEFECTS``), rather than reporting every answer of any VTN as invalid:

* ``ven`` = objectMetadata + BlVenRequest, and ``resource`` = objectMetadata + BlResourceRequest: the first
  demands ``objectType`` in [PROGRAM, EVENT, ..., VEN, RESOURCE], the second ``BL_VEN_REQUEST`` /
  ``BL_RESOURCE_REQUEST``; no object satisfies both. A stored object carries the VTN-provisioned type
  (``VEN``, ``RESOURCE``): the request discriminator's enum is dropped from the object schemas.
* Operations with security but no ``401`` response (``PUT /programs/{id}``, ``GET /notifiers``): a 401 for
  a missing or expired token is allowed on every secured operation.
* ``POST /vens`` lists no ``409``, although venName "is expected to be unique within the scope of a VTN"
  and ``conflict`` is described as "a violation of a unique constraint on a name": 409 is allowed there.
* ``notification.object`` and the program's ``payloadDescriptors`` have a ``discriminator`` on objectType
  without a ``mapping``, which an OAS validator resolves to schemas named ``EVENT``, ``VEN``...: the
  mapping to ``event``, ``ven``... (and the payload descriptor schemas) is added.
* ``POST /auth/token`` requires client_id and client_secret in the form; RFC 6749 section 2.3.1 lets a
  client authenticate with HTTP Basic instead: with ``basic_auth=True`` the form needs only grant_type.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

#: The contradictions in the 3.1.0 file and how they are read (see the module docstring).
SPEC_DEFECTS = (
    "ven/resource: objectMetadata.objectType (VEN/RESOURCE) vs the BL request's objectType enum: the enum is dropped",
    "401 allowed on every secured operation (missing on PUT /programs/{programID}, GET /notifiers)",
    "409 allowed on POST /vens (venName unique)",
    "discriminator on objectType without a mapping (notification.object, program payloadDescriptors): mapped",
    "POST /auth/token with HTTP Basic client authentication: client_id/client_secret not required in the form",
)

_EXTRA_STATUSES: dict[tuple[str, str], set[str]] = {("post", "/vens"): {"409"}}

_NO_BODY = object()


@dataclass
class Operation:
    """One method on one path template of the spec, with its parameters and responses resolved."""

    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    parameters: list[dict[str, Any]]
    request_schema: Optional[dict[str, Any]]
    request_media: Optional[str]
    request_required: bool
    responses: dict[str, Optional[dict[str, Any]]]
    secured: bool
    path_names: list[str] = field(default_factory=list)


class SpecValidator:
    """Checks requests, answers and notifications against the OpenADR 3.1.0 OpenAPI file."""

    def __init__(self, path: str | Path) -> None:
        import yaml
        from openapi_schema_validator import OAS30Validator, oas30_format_checker

        self.path = Path(path)
        spec = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        self.spec = spec
        self._patch(spec)
        self._components = spec["components"]
        self._validator_class = OAS30Validator
        self._format_checker = oas30_format_checker
        self._validators: dict[str, Any] = {}
        self.operations: list[Operation] = []
        for template, item in spec["paths"].items():
            shared = [self._deref(p) for p in item.get("parameters", [])]
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.operations.append(self._operation(method, template, op, shared))
        # Literal paths before templated ones (/notifiers/mqtt/topics/vens before .../vens/{venID}).
        self.operations.sort(key=lambda o: o.template.count("{"))

    # -- loading

    @staticmethod
    def _patch(spec: dict[str, Any]) -> None:
        schemas = spec["components"]["schemas"]
        for server, request in (("ven", "BlVenRequest"), ("resource", "BlResourceRequest")):
            body = copy.deepcopy(schemas[request])
            body["properties"].pop("objectType", None)
            body["required"] = [name for name in body.get("required", []) if name != "objectType"]
            schemas[f"_{request}AsStored"] = body
            schemas[server]["allOf"] = [
                part if part.get("$ref") != f"#/components/schemas/{request}"
                else {"$ref": f"#/components/schemas/_{request}AsStored"}
                for part in schemas[server]["allOf"]]
        # discriminator.propertyName objectType without a mapping: the validator would look for schemas
        # named after the values (#/components/schemas/EVENT): map the values to the schemas meant.
        ref = "#/components/schemas/"
        schemas["notification"]["properties"]["object"]["discriminator"]["mapping"] = {
            kind: ref + name for kind, name in (("PROGRAM", "program"), ("EVENT", "event"), ("REPORT", "report"),
                                               ("SUBSCRIPTION", "subscription"), ("VEN", "ven"),
                                               ("RESOURCE", "resource"))}
        schemas["programRequest"]["properties"]["payloadDescriptors"]["items"]["discriminator"]["mapping"] = {
            "EVENT_PAYLOAD_DESCRIPTOR": ref + "eventPayloadDescriptor",
            "REPORT_PAYLOAD_DESCRIPTOR": ref + "reportPayloadDescriptor"}

    def _deref(self, node: Any) -> Any:
        """Follow a local ``$ref`` to responses/parameters/requestBodies (schemas stay as refs)."""
        while isinstance(node, dict) and "$ref" in node and not node["$ref"].startswith("#/components/schemas/"):
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _operation(self, method: str, template: str, op: dict[str, Any], shared: list[dict[str, Any]]) -> Operation:
        params = {(p["name"], p["in"]): p for p in shared}
        params.update({(p["name"], p["in"]): p for p in (self._deref(x) for x in op.get("parameters", []))})
        names = re.findall(r"{([^}]+)}", template)
        regex = "^" + re.sub(r"\\{[^}]+\\}", "([^/]+)", re.escape(template)) + "$"
        request_schema = request_media = None
        required = False
        body = self._deref(op.get("requestBody"))
        if body:
            request_media, media = next(iter(body["content"].items()))
            request_schema = media.get("schema")
            required = bool(body.get("required", False))
        responses: dict[str, Optional[dict[str, Any]]] = {}
        for status, answer in op.get("responses", {}).items():
            answer = self._deref(answer)
            content = (answer or {}).get("content", {}).get("application/json")
            responses[str(status)] = content.get("schema") if content else None
        return Operation(method, template, op.get("operationId", f"{method} {template}"), re.compile(regex),
                         list(params.values()), request_schema, request_media, required, responses,
                         bool(op.get("security")), names)

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = self._validator_class({**schema, "components": self._components},
                                                          format_checker=self._format_checker)
        return self._validators[key]

    # -- checking

    def find(self, method: str, path: str) -> tuple[Optional[Operation], dict[str, str]]:
        """The operation for ``method`` on ``path`` (relative to the VTN's base URL) and its path values."""
        for op in self.operations:
            match = op.pattern.match(path)
            if match and op.method == method.lower():
                return op, dict(zip(op.path_names, match.groups(), strict=True))
        return None, {}

    def check_schema(self, schema: dict[str, Any], instance: Any, where: str) -> list[str]:
        """Every way ``instance`` breaks ``schema`` (resolved in the spec's components), one line each."""
        errors = sorted(self._validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
        problems: list[str] = []
        nullable_at = {tuple(e.absolute_path) for e in errors if "for not nullable" in e.message}
        for error in errors:
            if error.instance is None and tuple(error.absolute_path) in nullable_at \
                    and "for not nullable" not in error.message:
                continue  # the same null said twice (nullable, then type)
            at = "/".join(str(p) for p in error.absolute_path)
            detail = error.message if len(error.message) < 300 else error.message[:300] + "..."
            if error.context:  # oneOf/anyOf: the closest branch's reason
                best = min(error.context, key=lambda e: len(list(e.absolute_schema_path)))
                detail += f" (e.g. {best.message[:200]})"
            problems.append(f"{where}{'/' + at if at else ''}: {detail}")
        return problems

    def check_schema_named(self, name: str, instance: Any, where: str) -> list[str]:
        return self.check_schema({"$ref": f"#/components/schemas/{name}"}, instance, where)

    def check_request(self, op: Operation, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
                      body: Any = _NO_BODY, media: Optional[str] = None, basic_auth: bool = False) -> list[str]:
        """Path values, query parameters and body of a request for ``op``. ``body`` is the parsed JSON
        (or form dict); leave it out for a request without a body."""
        where = f"request {op.method.upper()} {op.template}"
        problems: list[str] = []
        by_key = {(p["name"], p["in"]): p for p in op.parameters}
        for name, value in path_values.items():
            param = by_key.get((name, "path"))
            if param is not None:
                problems += self.check_schema(param.get("schema", {}), value, f"{where} path {name}")
        values: dict[str, list[str]] = {}
        for name, value in query:
            values.setdefault(name, []).append(value)
        for name, raw in values.items():
            param = by_key.get((name, "query"))
            if param is None:
                problems.append(f"{where}: query parameter {name!r} is not defined by the spec")
                continue
            schema = param.get("schema", {})
            typed = self._coerce(schema, raw)
            if isinstance(typed, str) and typed.startswith("\0"):
                problems.append(f"{where} query {name}: {typed[1:]}")
                continue
            problems += self.check_schema(schema, typed, f"{where} query {name}")
        for (name, place), param in by_key.items():
            if place == "query" and param.get("required") and name not in values:
                problems.append(f"{where}: required query parameter {name!r} missing")
        if op.request_schema is None:
            if body is not _NO_BODY and body not in (None, b"", ""):
                problems.append(f"{where}: the spec defines no request body")
            return problems
        if body is _NO_BODY or body is None:
            if op.request_required:
                problems.append(f"{where}: request body required")
            return problems
        if media and op.request_media and media != op.request_media:
            problems.append(f"{where}: Content-Type {media!r}, the spec says {op.request_media!r}")
        schema = op.request_schema
        if basic_auth and op.template == "/auth/token":
            resolved = copy.deepcopy(self._components["schemas"]["clientCredentialRequest"])
            resolved["required"] = ["grant_type"]
            schema = resolved
        problems += self.check_schema(schema, body, f"{where} body")
        return problems

    @staticmethod
    def _coerce(schema: dict[str, Any], raw: list[str]) -> Any:
        """A query parameter's strings as the types its schema names (form style, explode)."""
        kind = schema.get("type")
        if kind == "array":
            return raw
        if len(raw) > 1:
            return f"\0given {len(raw)} times"
        value = raw[0]
        if kind == "integer":
            try:
                return int(value)
            except ValueError:
                return f"\0{value!r} is not an integer"
        if kind == "boolean":
            if value not in ("true", "false"):
                return f"\0{value!r} is not true/false"
            return value == "true"
        return value

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """The status is one the spec allows for ``op`` and the JSON body matches its schema."""
        where = f"answer {op.method.upper()} {op.template} {status}"
        allowed = set(op.responses) | _EXTRA_STATUSES.get((op.method, op.template), set())
        if op.secured:
            allowed.add("401")
        if str(status) not in allowed and "default" not in allowed:
            return [f"{where}: status {status} not allowed by the spec (allowed: {', '.join(sorted(allowed))})"]
        schema = op.responses.get(str(status))
        if schema is None:
            schema = self._components["schemas"]["problem"] if status == 401 else None
        if schema is None:
            return []
        return self.check_schema(schema, body, f"{where} body")

    def check_notification(self, body: Any, where: str = "notification") -> list[str]:
        return self.check_schema_named("notification", body, where)


def nulls(value: Any, where: str = "") -> list[str]:
    """Every field sent as JSON null: an unset field is left out on the wire (the gateway's rule)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                found.append(f"{where}/{key}")
            else:
                found += nulls(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += nulls(item, f"{where}/{index}")
    return found
