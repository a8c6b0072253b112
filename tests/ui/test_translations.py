"""Every user-facing string has a Chinese translation, the built .qm matches the .ts sources, and
the language follows the OS locale unless TELLER_GUARD_LANG says otherwise."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

from ui import i18n

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "resources" / "translations" / "teller_guard_zh_CN.ts"


def test_every_string_is_translated() -> None:
    result = subprocess.run([sys.executable, "scripts/build_ui_resources.py", "--check"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_placeholders_survive_translation() -> None:
    import re

    for message in ET.parse(TS).getroot().iter("message"):
        source = message.findtext("source") or ""
        translation = message.findtext("translation") or ""
        assert sorted(re.findall(r"\{\w+\}", source)) == sorted(
            re.findall(r"\{\w+\}", translation)), source
        if "&" in source:
            assert "&" in translation, f"mnemonic lost: {source!r}"


def test_built_qm_has_every_translation(qapp) -> None:
    translator = QTranslator()
    assert translator.load(i18n.qm_path("zh_CN"))
    root = ET.parse(TS).getroot()
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            source = message.findtext("source") or ""
            expected = message.findtext("translation")
            assert translator.translate(name, source) == expected, (name, source)


@pytest.mark.parametrize(("env", "system", "expected"), [
    ("", "zh_CN", "zh_CN"), ("", "zh_TW", "zh_CN"), ("", "en_US", "en"), ("", "C", "en"),
    ("en", "zh_CN", "en"), ("zh_CN", "en_US", "zh_CN"),
])
def test_language_choice(monkeypatch: pytest.MonkeyPatch, env: str, system: str,
                         expected: str) -> None:
    monkeypatch.setenv(i18n.ENV_LANG, env)
    assert i18n.choose_language(QLocale(system)) == expected


def test_installed_translator_translates_codes(qapp, zh_cn: None) -> None:
    assert i18n.finding_type("BANK_CARD") == "银行卡号"
    assert i18n.finding_type("SOMETHING_NEW") == "SOMETHING_NEW"
    assert i18n.unlock_message("backoff") == "错误次数过多。"
    assert i18n.watcher("idle") == "离开锁屏"
    assert i18n.last_event("IDLE_LOCK locked") == "锁屏：已锁定"
    assert i18n.last_event("SOMETHING_NEW skipped") == "SOMETHING_NEW：已跳过"
    assert QCoreApplication.translate("Tray", "&Lock now") == "立即锁屏(&L)"


def test_missing_translation_is_an_error(qapp, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(i18n, "qm_path", lambda lang: str(tmp_path / f"{lang}.qm"))
    with pytest.raises(i18n.TranslationMissing, match="build_ui_resources"):
        i18n.install_translator(qapp, "zh_CN")
    assert i18n.install_translator(qapp, "en") is None
