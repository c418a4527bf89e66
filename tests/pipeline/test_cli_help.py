"""``--help`` of every command: each option explained, and an ``Examples:`` epilog."""

from __future__ import annotations

import argparse
import re

import pytest

from urst_dask.cli import _parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(argv path, parser) of the top-level parser and every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


COMMANDS = [path for path, _ in _commands(_parser())]


def _parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    return dict(_commands(_parser()))[path]


def test_every_command_is_listed():
    assert {("stylize",), ("export",), ("demo",), ("compare",), ("video",), ("train",), ("bench", "memory"),
            ("weights", "fetch")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "urst-dask")
def test_help_explains_every_option_and_shows_examples(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    parser = _parser_of(path)
    unexplained = [", ".join(a.option_strings) or a.dest for a in parser._actions
                   if not isinstance(a, argparse._SubParsersAction) and a.help is not argparse.SUPPRESS
                   and not (a.help or "").strip()]
    assert not unexplained, f"urst-dask {' '.join(path)}: options without help: {unexplained}"
    for a in parser._actions:  # every option is in the printed help
        if a.option_strings and a.help is not argparse.SUPPRESS:
            assert a.option_strings[-1] in shown
    assert re.search(r"^Examples:\n(  urst-dask .*\n|  \S+=\S+ urst-dask .*\n)", shown, re.M), \
        f"urst-dask {' '.join(path)} --help: no 'Examples:' epilog starting with a command line"
    examples = shown.split("Examples:\n", 1)[1]
    runs = [line for line in examples.splitlines() if re.match(r"\s+(\S+=\S+ )?urst-dask ", line)]
    assert 2 <= len(runs) <= 4, f"urst-dask {' '.join(path)}: {len(runs)} examples; give 2 to 4"
    if path:  # the examples run this very command
        assert all(" ".join(path) in line for line in runs), runs


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "urst-dask")
def test_the_examples_parse(path, capsys):
    """Each example's command line is accepted by the parser (nothing is run)."""
    parser = _parser()
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    examples = capsys.readouterr().out.split("Examples:\n", 1)[-1]
    lines = re.sub(r"\\\n\s*", " ", examples).splitlines()  # continued lines joined
    for line in lines:
        m = re.match(r"\s+(?:\S+=\S+ )?urst-dask (.*)", line)
        if not m:
            continue
        argv = re.split(r"\s{2,}", m.group(1).strip())[0].split()  # the comment follows two spaces
        parser.parse_args(argv)


@pytest.mark.parametrize("path", [p for p in COMMANDS if p and not any(
    isinstance(a, argparse._SubParsersAction) for a in _parser_of(p)._actions)], ids=" ".join)
def test_verbosity_is_accepted_after_every_command(path):
    """-v/-q after the command's name too, nested commands (``weights fetch``) included."""
    parser = _parser_of(path)
    assert {"-v", "-q"} <= {s for a in parser._actions for s in a.option_strings}, path


@pytest.mark.parametrize("command, missing", [("bench", "BENCHMARK"), ("weights", "ACTION")])
def test_a_group_without_its_subcommand_names_what_is_missing(capsys, command, missing):
    """argparse named the internal destination ('required: bcmd')."""
    from urst_dask.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command])
    assert exc.value.code == 2 and f"the following arguments are required: {missing}" in capsys.readouterr().err
