"""Escalation policies as the API takes them: ``{steps: [{targets, webhooks?,
waitSeconds, skipIfNobodyActive?}], repeat?}``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from tocsin.text import check_names

NAME_RE = re.compile(r"[A-Za-z0-9_.:@\-]{1,100}")
MAX_STEPS = 20
MAX_TARGETS = 100
MAX_WAIT_S = 7 * 24 * 3600
MAX_REPEAT = 10
MAX_WEBHOOKS = 20


class Step(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    targets: list[str] = Field(min_length=1, max_length=MAX_TARGETS)
    webhooks: list[str] = Field(
        default_factory=list, max_length=MAX_WEBHOOKS,
        description="named webhook targets (PUT /api/webhook-targets/{name}) the step "
        "also posts to: a team's chat room")
    wait_seconds: int = Field(ge=0, le=MAX_WAIT_S,
                              description="time to wait for an ack before the next step")
    skip_if_nobody_active: bool = Field(
        default=True, description="when presence says none of this step's targets has a "
        "visible tab, they are notified all the same (inbox, push, email) and the next "
        "step is due at once instead of after waitSeconds (never while presence is "
        "unknown)")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for t in v:
            if not t or len(t) > 200:
                raise ValueError("each target must be a user id of 1 to 200 characters")
        check_names(v)  # a stored target is a recipient later: refused now, not per run
        return list(dict.fromkeys(v))

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, v: list[str]) -> list[str]:
        for t in v:
            if not NAME_RE.fullmatch(t):
                raise ValueError("each webhook is a target name of 1 to 100 letters, "
                                 "digits or _.:@-")
        return list(dict.fromkeys(v))


class Policy(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    repeat: int = Field(default=0, ge=0, le=MAX_REPEAT,
                        description="how many more times to run all steps after the first pass")

    def wire(self) -> dict[str, object]:
        out = self.model_dump(by_alias=True)
        for step in out["steps"]:
            if not step["webhooks"]:  # shown only when a step has some
                del step["webhooks"]
        return out

    def potential_notifications(self) -> int:
        """How many notifications an incident under this policy makes if nobody
        acknowledges: every target of every step, every round (at most 20 x 100 x 11
        = 22,000)."""
        return (self.repeat + 1) * sum(len(s.targets) for s in self.steps)
