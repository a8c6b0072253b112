"""The Group Policy templates: every value the ADMX writes is a policy key the schema knows,
with values it accepts, and both ADMLs carry every string and presentation it names."""

from __future__ import annotations

import re
import typing
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pydantic import BaseModel

from guard.policy.layers import registry_layer, validate
from guard.policy.schema import Policy
from tests.installer.conftest import INSTALLER

ADMX_DIR = INSTALLER / "windows" / "admx"
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}
LANGUAGES = ("en-US", "zh-CN")


def admx() -> ET.Element:
    return ET.parse(ADMX_DIR / "TellerGuard.admx").getroot()


def elements() -> list[ET.Element]:
    return [el for policy in admx().iterfind(".//p:policy", NS)
            for el in policy.find("p:elements", NS) or []]


def field_of(key: str) -> Any:
    """The pydantic field of a dotted policy key (``idle.lock_after_s``); fails when unknown."""
    model: type[BaseModel] = Policy
    parts = key.split(".")
    for part in parts[:-1]:
        assert part in model.model_fields, f"{key}: no section {part!r} in the policy schema"
        annotation = model.model_fields[part].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), key
        model = annotation
    assert parts[-1] in model.model_fields, f"{key}: {model.__name__} has no {parts[-1]!r}"
    return model.model_fields[parts[-1]]


def test_every_value_name_is_a_schema_key() -> None:
    names = [el.get("valueName") for el in elements()]
    assert len(names) >= 8 and "agent.endpoint" in names and "idle.lock_after_s" in names
    assert len(set(names)) == len(names)
    for name in names:
        assert name is not None
        field_of(name)


def test_every_policy_writes_the_registry_layer_key() -> None:
    for policy in admx().iterfind(".//p:policy", NS):
        assert policy.get("key") == r"Software\Policies\TellerGuard"
        assert policy.get("class") == "Machine"


def test_enum_values_are_values_the_schema_accepts() -> None:
    for el in elements():
        if el.tag != f"{{{NS['p']}}}enum":
            continue
        allowed = set(typing.get_args(field_of(el.get("valueName", "")).annotation))
        values = [s.text for s in el.iterfind(".//p:value/p:string", NS)]
        assert values and set(values) <= allowed, el.get("valueName")


def test_decimal_bounds_stay_inside_the_schema_bounds() -> None:
    for el in elements():
        if el.tag != f"{{{NS['p']}}}decimal":
            continue
        field = field_of(el.get("valueName", ""))
        lo, hi = int(el.get("minValue", "0")), int(el.get("maxValue", "0"))
        for bound in field.metadata:
            if hasattr(bound, "ge"):
                assert lo >= bound.ge, el.get("valueName")
            if hasattr(bound, "gt"):
                assert lo > bound.gt, el.get("valueName")
            if hasattr(bound, "le"):
                assert hi <= bound.le, el.get("valueName")


def test_what_group_policy_writes_is_read_as_a_valid_policy() -> None:
    class GroupPolicy:
        """The values as Group Policy writes them: REG_SZ text and enums, REG_DWORD decimals."""

        source = r"HKLM\Software\Policies\TellerGuard"

        def policy_values(self) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for el in elements():
                tag = el.tag.split("}")[1]
                name = el.get("valueName", "")
                if tag == "text":
                    out[name] = "https://guard.bank.example"
                elif tag == "decimal":
                    out[name] = max(int(el.get("minValue", "0")), 30)
                else:
                    out[name] = el.find(".//p:value/p:string", NS).text  # type: ignore[union-attr]
            out["idle.lock_after_s"] = 600  # warn (30) must stay below lock
            return out

    policy = validate(registry_layer(GroupPolicy()), GroupPolicy.source)
    assert policy.agent.endpoint == "https://guard.bank.example"
    assert policy.idle.lock_after_s == 600


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_adml_has_every_string_and_presentation(language: str) -> None:
    text = (ADMX_DIR / "TellerGuard.admx").read_text(encoding="utf-8")
    root = ET.parse(ADMX_DIR / language / "TellerGuard.adml").getroot()
    strings = {s.get("id"): s.text or "" for s in root.iterfind(".//p:string", NS)}
    presentations = {p.get("id"): p for p in root.iterfind(".//p:presentation", NS)}
    for ref in re.findall(r"\$\(string\.([A-Za-z0-9_]+)\)", text):
        assert strings.get(ref), f"{language}: string {ref} missing"
    for ref in re.findall(r"\$\(presentation\.([A-Za-z0-9_]+)\)", text):
        assert ref in presentations, f"{language}: presentation {ref} missing"
        for control in presentations[ref]:
            assert control.get("refId") in {el.get("id") for el in elements()}
    if language == "zh-CN":
        assert "采集服务器" in strings["Endpoint"]
