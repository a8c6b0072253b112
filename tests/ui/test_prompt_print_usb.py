"""The print and USB dialogs as the machine service's requests arrive at the teller's agent:
printer, document, pages, application and the masked customer data; the drive and the file;
in Chinese; the real buttons clicked."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from guard.model import Action, Channel, FindingSummary
from guard.pipeline.prompt import PromptAnswer, PromptRequest
from ui.prompt import ConfirmDialog, JustifyDialog, Toast, make_dialog

ID = FindingSummary(type="CN_RESIDENT_ID", count=2, masked=["110***********002X",
                                                            "440***********1234"])
PRINT = PromptRequest(action=Action.CONFIRM, channel=Channel.PRINT, kind="job_held",
                      findings=(ID,), timeout_s=60,
                      detail={"printer": "柜台打印机", "document": "客户名单.pdf", "pages": "3",
                              "source_app": "CoreBanking.exe", "teller": "zhang"})
USB = PromptRequest(action=Action.JUSTIFY, channel=Channel.USB, kind="volume_mounted",
                    timeout_s=60, min_reason_len=4, reasons=("客户本人要求", "内部审核"),
                    detail={"volume": "/media/zhang/KINGSTON"})


def _shown(qtbot: QtBot, request: PromptRequest) -> tuple[object, list[PromptAnswer]]:
    dialog = make_dialog(request)
    answers: list[PromptAnswer] = []
    dialog.answered.connect(answers.append)
    qtbot.addWidget(dialog)
    dialog.show_prompt()
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    return dialog, answers


@pytest.mark.usefixtures("zh_cn")
def test_the_print_dialog_shows_the_job_and_confirm_releases(qtbot: QtBot) -> None:
    dialog, answers = _shown(qtbot, PRINT)
    assert isinstance(dialog, ConfirmDialog)
    assert dialog.headline.text() == "此打印任务包含客户信息。"
    text = dialog.findings.text()
    for shown in ("打印机：柜台打印机", "文档：客户名单.pdf", "页数：3", "CoreBanking.exe",
                  "110***********002X", "440***********1234"):
        assert shown in text, (shown, text)
    assert "zhang" not in text  # whose session is asked is not a line of the dialog
    qtbot.mouseClick(dialog.proceed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(answers), timeout=5000)
    assert answers[0].proceed


@pytest.mark.usefixtures("zh_cn")
def test_the_print_dialog_cancel_is_the_safe_choice(qtbot: QtBot) -> None:
    dialog, answers = _shown(qtbot, PRINT)
    assert isinstance(dialog, ConfirmDialog)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(answers), timeout=5000)
    assert not answers[0].proceed


@pytest.mark.usefixtures("zh_cn")
def test_the_usb_dialog_warns_and_takes_a_reason(qtbot: QtBot) -> None:
    dialog, answers = _shown(qtbot, USB)
    assert isinstance(dialog, JustifyDialog)
    assert dialog.headline.text() == "检测到接入了移动存储设备。禁止将客户信息拷贝到移动存储设备。"
    assert "设备：/media/zhang/KINGSTON" in dialog.findings.text()
    assert not dialog.proceed_button.isEnabled()
    first = dialog.reason_buttons[0]  # clicked on its circle, as a teller does
    qtbot.mouseClick(first, Qt.MouseButton.LeftButton, pos=QPoint(8, first.height() // 2))
    assert dialog.proceed_button.isEnabled()
    qtbot.mouseClick(dialog.proceed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(answers), timeout=5000)
    assert answers[0].proceed and answers[0].reason == "客户本人要求"


@pytest.mark.usefixtures("zh_cn")
def test_the_usb_file_toast_names_the_drive_and_file(qtbot: QtBot) -> None:
    toast = Toast()
    qtbot.addWidget(toast)
    toast.show_request(PromptRequest(
        action=Action.NOTIFY, channel=Channel.USB, kind="file_written", findings=(ID,),
        detail={"volume": "/media/zhang/KINGSTON", "file": "客户名单.csv"}))
    texts = " ".join(label.text() for label in toast.findChildren(QLabel))
    assert "客户名单.csv" in texts and "110***********002X" in texts
