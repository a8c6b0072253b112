"""The pipeline: scan → decide → prompt → enforce → event, with a scripted teller and an in-memory
sink; events never carry raw values."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.events import event_type
from guard.model import Action, Channel, Device, Observation, Outcome
from guard.pipeline.pipeline import Enforcement, MemorySink, Pipeline, mask_text
from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from guard.policy.layers import merge, packaged_text, parse_toml, validate
from guard.policy.schema import Policy
from tests.support.fakes import TableScanner

CARD = "6222021234560128"
RID = "11010519491231002X"
TEXT = f"客户 张三 卡号 {CARD} 身份证 {RID} 请办理"


def policy(layer: str = "") -> Policy:
    return validate(merge(parse_toml(packaged_text(), "p"), parse_toml(layer, "l")), "l")


def make(layer: str = "", answers: list[PromptAnswer] | None = None
         ) -> tuple[Pipeline, ScriptedPrompter, MemorySink]:
    p = policy(layer)
    prompter = ScriptedPrompter(answers or [])
    sink = MemorySink()
    pipe = Pipeline(scanner=TableScanner(), policy=lambda: p, prompter=prompter, sink=sink,
                    device=Device(id="dev-1", hostname="pc-1", branch="b-7"), teller="teller1")
    return pipe, prompter, sink


class Recorder:
    def __init__(self, works: bool = True) -> None:
        self.works = works
        self.calls: list[str] = []

    def redact(self, findings: tuple) -> bool:  # type: ignore[type-arg]
        self.calls.append(f"redact:{len(findings)}")
        return self.works

    def block(self) -> bool:
        self.calls.append("block")
        return self.works

    def allow(self) -> bool:
        self.calls.append("allow")
        return True

    def enforcement(self) -> Enforcement:
        return Enforcement(redact=self.redact, block=self.block, allow=self.allow)


def assert_no_raw(sink: MemorySink) -> None:
    for e in sink.events:
        body = e.to_json()
        assert CARD not in body and RID not in body and "张三" not in body


CASES = [
    # name, layer, answers, expected outcome, expected enforcement calls, notified kinds
    ("notify", "", [], Outcome.NOTIFIED, [], ["copy"]),
    ("audit", '[clipboard]\naction = "audit"\n', [], Outcome.RECORDED, [], []),
    ("redact", '[clipboard]\naction = "redact"\n', [], Outcome.REDACTED, ["redact:2"],
     ["redacted"]),
    ("block", '[clipboard]\naction = "block"\n', [], Outcome.BLOCKED, ["block"], ["blocked"]),
    ("confirm yes", '[clipboard]\naction = "confirm"\n', [PromptAnswer(True)],
     Outcome.ACKNOWLEDGED, ["allow"], []),
    ("confirm no", '[clipboard]\naction = "confirm"\n', [PromptAnswer(False)],
     Outcome.CANCELLED, ["block"], []),
    ("confirm timeout", '[clipboard]\naction = "confirm"\n', [],
     Outcome.TIMED_OUT, ["block"], []),
    ("justify with reason", '[clipboard]\naction = "justify"\n',
     [PromptAnswer(True, "客户本人要求")], Outcome.JUSTIFIED, ["allow"], []),
    ("justify too short", '[clipboard]\naction = "justify"\n', [PromptAnswer(True, "ok")],
     Outcome.CANCELLED, ["block"], []),
]


@pytest.mark.parametrize(("layer", "answers", "outcome", "calls", "notified"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_actions_table(layer: str, answers: list[PromptAnswer], outcome: Outcome,
                       calls: list[str], notified: list[str]) -> None:
    pipe, prompter, sink = make(layer, answers)
    rec = Recorder()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT, source_app="gedit"),
                          rec.enforcement())
    assert handled.outcome == outcome
    assert rec.calls == calls
    assert [r.kind for r in prompter.notified] == notified
    (event,) = sink.events
    assert event.type == "CLIPBOARD_COPY" and event.outcome == outcome
    assert event.device.id == "dev-1" and event.teller == "teller1"
    assert event.source_app == "gedit" and event.decision == "clipboard.action"
    assert event.policy_version == policy().version
    assert {f.type: f.count for f in event.findings} == {"BANK_CARD": 1, "CN_RESIDENT_ID": 1}
    assert "622202******0128" in event.findings[0].masked
    assert_no_raw(sink)


def test_prompt_carries_findings_and_policy_reasons() -> None:
    pipe, prompter, _ = make('[clipboard]\naction = "justify"\n', [PromptAnswer(True, "内部审核")])
    pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT, source_app="gedit"))
    (req,) = prompter.asked
    assert req.action == Action.JUSTIFY and req.channel == Channel.CLIPBOARD
    assert req.reasons == ("业务办理需要", "客户本人要求", "内部审核") and req.min_reason_len == 4
    assert req.timeout_s == 60 and req.detail == {"source_app": "gedit"}
    assert {f.type for f in req.findings} == {"BANK_CARD", "CN_RESIDENT_ID"}
    assert all(CARD not in m for f in req.findings for m in f.masked)


def test_justification_typed_with_customer_data_is_masked() -> None:
    pipe, _, sink = make('[clipboard]\naction = "justify"\n',
                         [PromptAnswer(True, f"客户要求 卡 {CARD}")])
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT))
    assert handled.outcome == Outcome.JUSTIFIED
    assert sink.events[0].justification == "客户要求 卡 622202******0128"
    assert_no_raw(sink)


def test_clean_content_records_nothing() -> None:
    pipe, prompter, sink = make()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy", text="今天天气很好"))
    assert handled.outcome == Outcome.SKIPPED and handled.event is None
    assert sink.events == [] and prompter.notified == []


def test_redact_failure_falls_back_to_block() -> None:
    pipe, _, sink = make('[clipboard]\naction = "redact"\n')
    rec = Recorder(works=False)
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT), rec.enforcement())
    assert rec.calls == ["redact:2", "block"]
    assert handled.outcome == Outcome.FAILED
    assert sink.events[0].detail["enforcement"] == "redact_failed"


def test_given_findings_skip_the_scanner() -> None:
    pipe, _, sink = make()
    scanner = pipe.scanner
    assert isinstance(scanner, TableScanner)
    found = scanner.scan_text(TEXT)
    calls = scanner.calls
    pipe.handle(Observation(Channel.SCREEN, "hotkey"), findings=found)
    assert scanner.calls == calls
    assert sink.events[0].type == "SCREEN_HOTKEY" and sink.events[0].outcome == Outcome.TIMED_OUT


def test_scanner_error_is_recorded_not_raised() -> None:
    class Broken:
        def scan_text(self, text: str) -> list:  # type: ignore[type-arg]
            raise RuntimeError("boom")

    pipe, _, _ = make()
    pipe.scanner = Broken()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT))
    assert handled.event is not None and handled.event.detail["scan_error"] == "RuntimeError"


def test_failing_sink_is_remembered_not_raised() -> None:
    class Full:
        def record(self, event: object) -> None:
            raise OSError("disk full")

    pipe, _, _ = make()
    pipe.sink = Full()
    pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT))
    assert pipe.sink_error is not None and "disk full" in pipe.sink_error
    good = MemorySink()
    pipe.sink = good
    pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT))
    assert pipe.sink_error is None and len(good.events) == 1


def test_long_text_scanned_in_chunks_finds_values_across_seams() -> None:
    from guard.pipeline.pipeline import SCAN_CHUNK, SCAN_OVERLAP

    pipe, _, _ = make()
    filler = "柜" * (SCAN_CHUNK - SCAN_OVERLAP - 8)  # the card straddles the first seam
    text = filler + CARD + "柜" * 1000 + RID + "柜" * (3 * SCAN_CHUNK)
    found = pipe.scan(text)
    assert [(f.type, text[f.start:f.end]) for f in found] == [("BANK_CARD", CARD),
                                                              ("CN_RESIDENT_ID", RID)]
    scanner = pipe.scanner
    assert isinstance(scanner, TableScanner) and scanner.calls > 1


def test_mask_text_and_event_type() -> None:
    found = TableScanner().scan_text(TEXT)
    masked = mask_text(TEXT, found)
    assert CARD not in masked and RID not in masked
    assert "622202******0128" in masked and "110***********002X" in masked
    assert event_type(Channel.USB, "volume_mounted") == "USB_VOLUME_MOUNTED"


def test_events_reach_a_real_journal(tmp_path: Path) -> None:
    from guard.delivery.journal import Journal

    p = policy()
    journal = Journal(tmp_path / "journal.db")
    try:
        pipe = Pipeline(scanner=TableScanner(), policy=lambda: p, prompter=ScriptedPrompter(),
                        sink=journal, device=Device(id="d", hostname="h"))
        pipe.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT))
        (record,) = journal.records()
        assert "CLIPBOARD_COPY" in record.body and CARD not in record.body
        assert journal.pending_count() == 1
    finally:
        journal.close()


# ---------------------------------------------------------------------------------------------
# What the scanner can read is the pipeline's business: text, images, files.


def test_images_go_through_the_scanners_scan_image() -> None:
    from tests.support.fakes import ImageTableScanner

    pipe, _, sink = make()
    card = TableScanner().scan_text(CARD)
    reader = ImageTableScanner(lambda image: card)
    pipe.scanner = reader
    assert pipe.can_scan_images() and not pipe.can_scan_files()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy_image", image=b"PNG",
                                      meta={"bytes": 3}))
    assert reader.images == [b"PNG"] and handled.scanned
    (event,) = sink.events
    assert event.type == "CLIPBOARD_COPY_IMAGE" and event.outcome == Outcome.NOTIFIED
    assert [f.type for f in event.findings] == ["BANK_CARD"]


def test_an_image_without_an_image_scanner_is_recorded_not_scanned() -> None:
    pipe, prompter, sink = make()
    assert not pipe.can_scan_images()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "copy_image", image=b"PNG",
                                      source_app="gedit", meta={"bytes": 3}))
    assert not handled.scanned and handled.outcome == Outcome.SKIPPED
    (event,) = sink.events
    assert (event.type, event.action, event.outcome) == ("CLIPBOARD_SKIPPED", Action.AUDIT,
                                                         Outcome.SKIPPED)
    assert event.detail["skipped"] == "image not scanned: no image scanner loaded"
    assert event.detail["bytes"] == 3 and event.source_app == "gedit"
    assert prompter.notified == []


def test_files_without_a_file_reader_are_counted_as_skipped(tmp_path: Path) -> None:
    letter = tmp_path / "a.txt"
    letter.write_text(RID, encoding="utf-8")
    pipe, _, sink = make()
    pipe.handle(Observation(Channel.CLIPBOARD, "copy_files", paths=(str(letter),)))
    (event,) = sink.events  # nothing scanned, so the event says so instead of staying silent
    assert event.type == "CLIPBOARD_COPY_FILES" and event.findings == []
    assert (event.detail["files"], event.detail["files_scanned"],
            event.detail["files_skipped"]) == (1, 0, 1)


def test_a_report_is_recorded_then_told_without_the_source_app() -> None:
    order: list[str] = []

    class Telling(ScriptedPrompter):
        def notify(self, request) -> None:  # type: ignore[no-untyped-def]
            order.append(f"notify:{len(sink.events)}")
            super().notify(request)

    p = policy()
    sink = MemorySink()
    prompter = Telling()
    pipe = Pipeline(scanner=TableScanner(), policy=lambda: p, prompter=prompter, sink=sink,
                    device=Device(id="d", hostname="h"))
    rec = Recorder()
    handled = pipe.handle(Observation(Channel.CLIPBOARD, "cleared", source_app="gedit",
                                      meta={"after_s": 60}), rec.enforcement(),
                          outcome=Outcome.CLEARED)
    assert order == ["notify:1"] and rec.calls == []  # recorded first; nothing enforced
    (event,) = sink.events
    assert (event.type, event.outcome, event.source_app) == ("CLIPBOARD_CLEARED",
                                                             Outcome.CLEARED, "gedit")
    assert event.detail["after_s"] == 60 and handled.event == event
    (told,) = prompter.notified
    assert (told.kind, told.detail, told.findings) == ("cleared", {}, ())


def test_an_idle_warning_is_a_countdown_to_the_lock() -> None:
    pipe, prompter, sink = make()
    pipe.handle(Observation(Channel.IDLE, "idle_warn", meta={"idle_s": 260}))
    (told,) = prompter.notified
    assert (told.action, told.kind, told.timeout_s) == (Action.LOCK, "idle_warn", 40)
    (event,) = sink.events
    assert (event.type, event.action, event.outcome) == ("IDLE_WARN", Action.NOTIFY,
                                                         Outcome.NOTIFIED)
