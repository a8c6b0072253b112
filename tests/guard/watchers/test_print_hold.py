"""The print guard: decision logic on the fake spooler, then the real thing — a private cupsd,
the real machine service as root, a session agent answering for the teller, and an ordinary
user printing with `lp` who cannot lift the hold."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.events import EventType
from guard.model import Action, Outcome
from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from guard.platforms._fake import FakeSpooler
from guard.watchers.print_hold import PrintHold, read_document
from tests.guard.watchers.real_service import (
    WAIT_S,
    PrintingService,
    PrintLab,
    print_lab,
)
from tests.guard.watchers.real_service import eventually as _eventually
from tests.support.core import Core

RID = "11010519491231002X"
CUSTOMER_TEXT = f"客户名单\n张三 身份证 {RID}\n".encode()
CLEAN_TEXT = b"Branch opening hours: 9:00 - 17:00\n"


def _hold(core: Core, spooler: FakeSpooler) -> PrintHold:
    hold = PrintHold(core.pipeline, spooler)
    hold.sync_queues()
    return hold


def _run(hold: PrintHold) -> None:
    hold.poll()  # no pool: jobs are handled in the calling thread


def test_confirmed_job_is_released_and_recorded_with_the_answer() -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=True)]))
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    job = spooler.submit("Office", CUSTOMER_TEXT, user="zhang", title="list.txt")
    _run(hold)
    assert [j.id for j in spooler.printed] == [job.id]
    (asked,) = core.prompter.asked
    assert asked.action is Action.CONFIRM
    assert asked.detail["printer"] == "Office" and asked.detail["document"] == "list.txt"
    assert asked.detail["teller"] == "zhang"  # the job owner's session is asked
    assert asked.findings[0].masked == ["110***********002X"]
    (event,) = core.sink.of_type(EventType.PRINT_JOB_HELD)
    assert event.outcome is Outcome.ACKNOWLEDGED and event.detail["print_job"] == "released"
    assert event.detail["user"] == "zhang"
    assert RID not in event.to_json()


@pytest.mark.parametrize("answer, outcome", [
    (PromptAnswer(proceed=False), Outcome.CANCELLED),
    (PromptAnswer(proceed=False, timed_out=True), Outcome.TIMED_OUT),
])
def test_cancel_or_no_answer_cancels_the_job(answer: PromptAnswer, outcome: Outcome) -> None:
    core = Core(ScriptedPrompter([answer]))
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    spooler.submit("Office", CUSTOMER_TEXT)
    _run(hold)
    assert spooler.printed == [] and len(spooler.cancelled) == 1 and spooler.pending == {}
    (event,) = core.sink.of_type(EventType.PRINT_JOB_HELD)
    assert event.outcome is outcome and event.detail["print_job"] == "cancelled"


def test_block_cancels_without_asking_and_justify_records_the_reason() -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=True, reason="客户本人要求 " + RID)]))
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    core.use('[print]\naction = "block"\n')
    spooler.submit("Office", CUSTOMER_TEXT)
    _run(hold)
    assert core.prompter.asked == [] and len(spooler.cancelled) == 1
    assert core.sink.events[-1].outcome is Outcome.BLOCKED
    core.use('[print]\naction = "justify"\n')
    spooler.submit("Office", CUSTOMER_TEXT)
    _run(hold)
    assert len(spooler.printed) == 1
    event = core.sink.events[-1]
    assert event.outcome is Outcome.JUSTIFIED and RID not in event.justification
    assert event.justification.startswith("客户本人要求")


def test_audit_and_notify_release_first_and_say_so() -> None:
    core = Core()
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    for action, outcome in (("audit", Outcome.RECORDED), ("notify", Outcome.NOTIFIED)):
        core.use(f'[print]\naction = "{action}"\n')
        spooler.submit("Office", CUSTOMER_TEXT)
        _run(hold)
        event = core.sink.events[-1]
        assert event.outcome is outcome and event.detail["print_job"] == "released"
    assert len(spooler.printed) == 2 and core.prompter.asked == []
    assert len(core.prompter.notified) == 1


def test_clean_documents_and_exempt_queues_print_without_a_prompt() -> None:
    core = Core()
    spooler = FakeSpooler(queues=("Office", "Receipts"))
    core.use('[print]\nexempt_queues = ["receipts"]\n')
    hold = _hold(core, spooler)
    assert spooler.guarded == {"Office"}  # exempt by name, case-insensitively
    receipt = spooler.submit("Receipts", CUSTOMER_TEXT)
    clean = spooler.submit("Office", CLEAN_TEXT)
    _run(hold)
    assert {j.id for j in spooler.printed} == {receipt.id, clean.id}
    assert core.prompter.asked == [] and core.sink.events == []
    # exempt_clean off: a clean job follows `clean`
    core.use('[print]\nexempt_clean = false\nclean = "confirm"\n')
    spooler.submit("Office", CLEAN_TEXT)
    _run(hold)
    assert len(core.prompter.asked) == 1 and len(spooler.cancelled) == 1  # no answer: cancel


def test_an_unreadable_document_is_recorded_as_not_scanned() -> None:
    core = Core()
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    spooler.submit("Office", b"\x89PNG\r\n\x1a\n" + bytes(200), fmt="image/png")
    spooler.no_document = False
    _run(hold)
    (event,) = core.sink.events
    assert event.detail["skipped"] == "binary file, not scanned"
    assert event.detail["print_job"] == "released"  # per `clean` (none): printed, recorded


def test_spooler_failures_are_states_and_a_failed_release_is_recorded() -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=True)]))
    spooler = FakeSpooler()
    hold = _hold(core, spooler)
    spooler.fail.add("jobs")
    hold.poll()
    assert hold.state.startswith("unavailable: fake spooler: jobs refused")
    spooler.fail = {"release"}
    spooler.submit("Office", CUSTOMER_TEXT)
    hold.poll()
    assert hold.state == "running"
    assert core.sink.events[-1].detail["print_job"] == "release_failed"


def test_read_document_pdf_postscript_and_bounds(tmp_path: Path) -> None:
    from tests.support.cups import simple_pdf

    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(simple_pdf([f"ID {RID}", "page one"], pages=2))
    read = read_document(pdf, 1 << 20)
    assert RID in read.text and read.pages == 2 and read.skipped == ""
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    assert "over 0 MB" in read_document(big, 1024).skipped
    if shutil.which("gs"):
        ps = tmp_path / "a.ps"
        ps.write_bytes(b"%!PS\n/Helvetica findfont 12 scalefont setfont 72 720 moveto "
                       b"(ID " + RID.encode() + b") show showpage\n")
        assert RID in read_document(ps, 1 << 20).text


# ---------------------------------------------------------------------------------------------
# The real thing.


class RealPrint(PrintingService):
    """A private cupsd with a guarded queue and an exempt one, the real machine service and a
    session agent side answering for the printing user from a script."""

    def __init__(self, lab: PrintLab, policy: str, collector: Any) -> None:
        super().__init__(lab, collector)
        self.policy = lab.root / "policy.toml"

    def start(self) -> None:
        super().start()
        self.wait_guarded()


@pytest.fixture
def real_print(tmp_path: Path) -> Iterator[Callable[[str], RealPrint]]:
    with print_lab(tmp_path, ("Office", "Receipts")) as lab:

        def make(policy: str) -> RealPrint:
            collector = lab.collector_serving(policy)
            rp = RealPrint(lab, policy, collector)
            lab.stack.callback(rp.stop)
            rp.start()
            return rp

        yield make


POLICY = ('version = "print-test"\n[prompts]\ntimeout_s = 20\n'
          '[print]\naction = "confirm"\nexempt_queues = ["Receipts"]\n')


def test_a_held_job_stays_held_against_its_owner_then_confirm_prints_it(
        real_print: Callable[[str], RealPrint]) -> None:
    from tests.support.cups import simple_pdf

    rp = real_print(POLICY)
    gate = threading.Event()

    class Gate(ScriptedPrompter):
        """The teller reads the dialog while the owner tries to lift the hold, then prints
        the customer list and cancels anything else."""

        def ask(self, request: Any) -> PromptAnswer:
            super().ask(request)
            gate.wait(WAIT_S)
            return PromptAnswer(proceed=request.detail.get("document") == "customers.pdf")

    rp.prompter.__class__ = Gate
    job = rp.lp("-d", "Office", "-t", "customers.pdf",
                data=simple_pdf([f"Zhang San ID {RID}"], pages=1))
    _eventually("the prompt", lambda: rp.prompter.asked)
    (asked,) = rp.prompter.asked
    assert asked.detail["printer"] == "Office" and asked.detail["document"] == "customers.pdf"
    assert asked.detail["pages"] == "1" and asked.findings[0].masked == ["110***********002X"]
    # the owner tries to lift the hold: each is refused or has no effect
    tries = [["lp", "-i", str(job), "-H", "resume"], ["lp", "-i", str(job), "-H", "immediate"],
             ["lpmove", f"Office-{job}", "Receipts"], ["cupsenable", "Office"],
             ["lpmove", f"Office-{job}", "Office_tg_release"]]
    for argv in tries:
        result = rp.cups.run(argv, user=rp.user, check=False)
        assert result.returncode != 0, (argv, result.stdout)
    immediate = rp.lp("-d", "Office", "-H", "immediate", data=f"ID {RID}\n".encode())
    time.sleep(1.0)  # give a wrongly released job time to come out
    assert rp.pdfs() == []
    assert rp.waiting(job)
    gate.set()
    _eventually("the PDF", lambda: len(rp.pdfs()) >= 1)
    # the -H immediate job was held and asked about too; the gate answers it with cancel
    _eventually("the second job cancelled", lambda: not rp.waiting(immediate))
    assert len(rp.pdfs()) == 1

    def two_held() -> list[dict[str, Any]] | None:
        held = rp.events("PRINT_JOB_HELD")
        return held[:2] if len(held) >= 2 else None

    events = _eventually("both events", two_held)
    by_job = {e["detail"]["job"]: e for e in events}
    assert by_job[job]["outcome"] == "acknowledged"
    assert by_job[job]["detail"]["print_job"] == "released"
    assert by_job[immediate]["outcome"] == "cancelled"
    assert by_job[job]["detail"]["user"] == rp.user
    assert all(RID not in json.dumps(e) for e in rp.events("PRINT_JOB_HELD"))


def test_no_answer_cancels_block_never_prints_and_exempt_queues_print(
        real_print: Callable[[str], RealPrint]) -> None:
    rp = real_print(POLICY)
    rp.prompter.__init__([PromptAnswer(proceed=False)])  # type: ignore[misc]
    job = rp.lp("-d", "Office", data=f"ID {RID}\n".encode())
    _eventually("the cancel", lambda: not rp.waiting(job))
    assert len(rp.prompter.asked) == 1 and rp.pdfs() == []
    # the exempt receipt printer: no prompt, out at once
    rp.lp("-d", "Receipts", data=CLEAN_TEXT)
    _eventually("the receipt", lambda: rp.pdfs())
    assert len(rp.prompter.asked) == 1
    # a clean document on the guarded queue prints without a prompt too
    rp.lp("-d", "Office", data=CLEAN_TEXT)
    _eventually("the clean job", lambda: len(rp.pdfs()) == 2)
    assert len(rp.prompter.asked) == 1
    # block: cancelled without asking, never printed
    rp.policy.write_text(POLICY.replace('action = "confirm"', 'action = "block"'))
    assert rp.proc is not None
    rp.proc.send_signal(1)  # SIGHUP: re-read the policy
    time.sleep(1.0)
    blocked = rp.lp("-d", "Office", data=f"ID {RID}\n".encode())
    _eventually("the block", lambda: not rp.waiting(blocked))
    time.sleep(0.5)
    assert len(rp.pdfs()) == 2 and len(rp.prompter.asked) == 1
    outcomes = [e["outcome"] for e in rp.events("PRINT_JOB_HELD")]
    assert outcomes == ["cancelled", "blocked"]
