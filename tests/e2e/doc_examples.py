"""The commands the documentation shows, read from the text itself: every line of the
README's ```sh blocks, and every line of every --help that starts with `vnetctl `.

An example is one command line (a trailing backslash continues it) with an optional
comment; `(exit N)` in the comment is the exit status it documents, else 0.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

from vnetctl.cli.main import build_admin_parser, build_parser

EXIT_RE = re.compile(r"\(exit (\d+)\)")


@dataclass
class Example:
    command: str  # as shown, continuation lines joined
    comment: str = ""
    sources: list[str] = field(default_factory=list)  # "README.md:44", "vnetctl run --help"

    @property
    def exits(self) -> int:
        found = EXIT_RE.search(self.comment)
        return int(found.group(1)) if found else 0

    @property
    def is_vnetctl(self) -> bool:
        return self.command.startswith("vnetctl ")

    def words(self) -> list[str]:
        return self.command.split()


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the comment starts at a `#` after a blank, outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].strip(), line[i + 1 :].strip()
    return line.strip(), ""


def commands_in(lines: list[tuple[int, str]], is_command) -> list[tuple[int, str, str]]:
    """(line number, command, comment) of the command lines, continuations joined;
    comment-only lines continue the comment above them."""
    found: list[tuple[int, str, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in lines:
        text = raw.strip()
        if pending is not None:
            start, head = pending
            text = head + " " + text
            number = start
            pending = None
        elif not text or not is_command(text):
            continue
        command, comment = split_comment(text)
        if command.endswith("\\"):
            pending = (number, command[:-1].rstrip())
            continue
        found.append((number, command, comment))
    return found


def readme_examples(readme: Path) -> list[tuple[str, str, str]]:
    """(source, command, comment) for every command of the README's ```sh blocks."""
    lines = readme.read_text().splitlines()
    in_sh, block = False, []
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if in_sh:
                in_sh = False
                continue
            in_sh = line.strip() == "```sh"
            continue
        if in_sh:
            block.append((number, line))
    found = commands_in(block, lambda text: not text.startswith("#"))
    return [(f"{readme.name}:{n}", command, comment) for n, command, comment in found]


def all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, commands and command groups, by its prog."""
    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        out.append((parser.prog, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    walk(build_admin_parser())
    return out


def help_examples() -> list[tuple[str, str, str]]:
    """(source, command, comment) for every `vnetctl ...` line of every --help."""
    found = []
    for prog, parser in all_parsers():
        lines = list(enumerate(parser.format_help().splitlines(), start=1))
        for _n, command, comment in commands_in(lines, lambda t: t.startswith("vnetctl ")):
            found.append((f"{prog} --help", command, comment))
    return found


def documented_examples(readme: Path) -> list[Example]:
    """Every example once (the same command with the same documented exit: one example,
    with each place it is shown)."""
    examples: dict[tuple[str, int], Example] = {}
    for source, command, comment in readme_examples(readme) + help_examples():
        example = Example(command, comment)
        key = (command, example.exits)
        examples.setdefault(key, example).sources.append(source)
    return list(examples.values())
