"""The CLI builds only the parser of the subcommand being run (start time, issue 16): it
must read every command line exactly as the full parser does."""

from __future__ import annotations

import pytest

from emulator import cli

LINES = [
    ["serve", "--port", "0", "--api-key", "a", "--api-key", "name=b,key=c", "--clock", "manual"],
    ["healthcheck", "--port", "3000", "--timeout", "1.5"],
    ["export", "/tmp/somewhere", "--force"],
    ["import", "/tmp/somewhere", "--data-dir", "/tmp/data"],
    ["scenarios", "validate", "a.yaml", "b.yaml"],
    ["webhooks", "trigger", "asset.ready", "--asset", "x"],
    ["listen", "--forward-to", "http://127.0.0.1:9/hook", "--events", "asset.ready"],
]


@pytest.mark.parametrize("line", LINES, ids=[line[0] for line in LINES])
def test_the_one_command_parser_reads_lines_as_the_full_one(line: list[str]) -> None:
    assert cli.build_parser(line[0]).parse_args(line) == cli.build_parser().parse_args(line)


def test_help_and_unknown_commands_see_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(["--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in cli.COMMANDS)
    with pytest.raises(SystemExit) as ended:
        cli.main(["serv"])
    assert ended.value.code == 2
    assert "choose from 'serve', 'healthcheck'" in capsys.readouterr().err
