"""Takes the credential verifiers out of a policy document before a teller's process gets it.

A curious teller on the PC is in the threat model: the supervisors' and IT's scrypt verifiers in
the teller's process (its memory, its cached central policy) would be an offline brute-force
target. The machine service therefore hands agents the central policy with every verifier
replaced by `WITHHELD` (the method stays offered, the check is the service's: the
``verify_credential`` message), and an agent beside the service withholds them from every layer
it reads itself. What the UI needs stays: supervisor ids, display names, OS groups and logins.

`VERIFIER_FIELDS` lists every secret the schema holds (`guard.policy.schema`); `quarantine_key`
is IT's *public* key and `agent.endpoint` an address, so neither is withheld.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from guard.policy.layers import parse_toml
from guard.policy.schema import WITHHELD, PolicyError

# (table, key) for one verifier; a table of "[[name]]" is each entry of that array of tables.
VERIFIER_FIELDS: tuple[tuple[str, str], ...] = (
    ("agent", "it_credential_hash"),
    ("[[supervisors]]", "credential_hash"),
)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def withhold_verifiers(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the policy document `doc` (one layer or a merged one) with every non-empty
    verifier replaced by `WITHHELD`; everything else unchanged. Malformed parts (a supervisors
    entry that is not a table) are left for validation to refuse."""
    out = copy.deepcopy(dict(doc))
    for table, key in VERIFIER_FIELDS:
        if table.startswith("[["):
            entries = out.get(table.strip("[]"))
            targets = [e for e in entries if isinstance(e, dict)] if isinstance(
                entries, list) else []
        else:
            section = out.get(table)
            targets = [section] if isinstance(section, dict) else []
        for target in targets:
            if target.get(key):
                target[key] = WITHHELD
    return out


def holds_verifier(doc: Mapping[str, Any]) -> bool:
    """True when `doc` still carries a verifier (anything but empty or `WITHHELD`)."""
    return withhold_verifiers(doc) != dict(doc)


def withheld_text(text: str, source: str = "central policy") -> str:
    """The TOML text of policy layer `text` without its verifiers (`withhold_verifiers`).

    The text is rewritten from the parsed document (comments and layout go), and the rewrite is
    parsed again and compared, so what an agent gets means exactly the stripped layer.
    `PolicyError` when `text` is not TOML, or holds a value this writer cannot express (a
    date: the schema has none, so such a layer would be refused anyway)."""
    doc = withhold_verifiers(parse_toml(text, source))
    out = to_toml(doc, source)
    if tomllib.loads(out) != doc:
        raise PolicyError(f"{source}: cannot be rewritten without its verifiers")
    return out


def to_toml(doc: Mapping[str, Any], source: str = "policy") -> str:
    """`doc` as TOML: one ``key = value`` line per top-level key (tables inline)."""
    return "".join(f"{_key(k)} = {_value(v, source)}\n" for k, v in doc.items())


def _key(key: object) -> str:
    text = str(key)
    return text if _BARE_KEY.match(text) else json.dumps(text, ensure_ascii=False)


def _value(value: object, source: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes (\" \\ \n \t \uXXXX …) are all TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, source) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v, source)}"
                               for k, v in value.items()) + "}"
    raise PolicyError(f"{source}: a {type(value).__name__} value cannot be handed to agents")
