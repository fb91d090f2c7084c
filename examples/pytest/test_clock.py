"""Each test has its own manual clock: phases move only when the test moves time."""

from pathlib import Path

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "sample.mp4"


def phase(livepeer_emulator, asset_id):
    return livepeer_emulator.get_asset(asset_id)["status"]["phase"]


def test_phases_follow_the_clock_step_by_step(livepeer_emulator):
    asset = livepeer_emulator.upload(VIDEO, name="stepwise")
    assert asset["status"]["phase"] == "waiting"
    livepeer_emulator.advance(0.5)  # the default timeline queues for 0.5 s ...
    assert phase(livepeer_emulator, asset["id"]) == "processing"
    livepeer_emulator.advance(3)  # ... then processes for 3 s
    assert phase(livepeer_emulator, asset["id"]) == "ready"


def test_time_of_another_tenant_does_not_move(livepeer_emulator, livepeer_emulator_server):
    mine = livepeer_emulator.upload(VIDEO, name="mine")
    other = livepeer_emulator_server.tenant()  # a second tenant on the same server
    theirs = other.upload(VIDEO, name="theirs")
    livepeer_emulator.wait_for_asset(mine["id"])
    assert phase(other, theirs["id"]) == "waiting"
    assert other.requests(method="POST")[0]["body"] == '{"name": "theirs"}'
