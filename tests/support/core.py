"""A pipeline on an in-memory sink with a scripted teller, whose policy a test can change."""

from __future__ import annotations

from guard.model import Device
from guard.pipeline.pipeline import MemorySink, Pipeline
from guard.pipeline.prompt import ScriptedPrompter
from guard.policy.layers import merge, packaged_text, parse_toml, validate
from guard.policy.schema import Policy
from tests.support.fakes import TableScanner


class Core:
    """A pipeline whose policy a test can change between steps."""

    def __init__(self, prompter: ScriptedPrompter | None = None) -> None:
        self.policy = self.make_policy("")
        self.prompter = prompter or ScriptedPrompter()
        self.sink = MemorySink()
        self.scanner = TableScanner()
        self.pipeline = Pipeline(scanner=self.scanner, policy=lambda: self.policy,
                                 prompter=self.prompter, sink=self.sink,
                                 device=Device(id="dev", hostname="pc"), teller="t1")

    @staticmethod
    def make_policy(layer: str) -> Policy:
        return validate(merge(parse_toml(packaged_text(), "p"), parse_toml(layer, "l")), "l")

    def use(self, layer: str) -> None:
        self.policy = self.make_policy(layer)

    def types(self) -> list[str]:
        return [e.type for e in self.sink.events]
