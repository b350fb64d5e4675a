"""Prompt templates as text files, loaded by name.

A file holds a `version:` line, then a `[system]` and a `[user]` section. Placeholders
are `{name}`; literal braces are doubled. The version is stored with every reading and
suggestion the prompt produced, so a change of wording can be traced in the data.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    def placeholders(self) -> set[str]:
        return {
            field
            for text in (self.system, self.user)
            for _, field, _, _ in string.Formatter().parse(text)
            if field
        }

    def render(self, **values: str) -> tuple[str, str]:
        """(system, user) with every placeholder filled; a missing one is a KeyError."""
        missing = self.placeholders() - values.keys()
        if missing:
            raise KeyError(f"prompt {self.name} needs {sorted(missing)}")
        return self.system.format(**values), self.user.format(**values)


@cache
def load(name: str) -> Prompt:
    return parse(name, (resources.files(__package__) / f"{name}.txt").read_text(encoding="utf-8"))


def parse(name: str, text: str) -> Prompt:
    """A prompt from the text of a prompt file (see the module docstring)."""
    version = re.search(r"^version:\s*(\S+)\s*$", text, re.MULTILINE)
    system = re.search(r"^\[system\]\n(.*?)(?=^\[user\]$)", text, re.MULTILINE | re.DOTALL)
    user = re.search(r"^\[user\]\n(.*)\Z", text, re.MULTILINE | re.DOTALL)
    if not (version and system and user):
        raise ValueError(f"prompt {name}: needs a version line, [system] and [user] sections")
    return Prompt(name, version.group(1), system.group(1).strip(), user.group(1).strip())
