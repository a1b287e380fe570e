"""`make demo` runs `jfrog-rotator demo`: every scenario behaves, and no secret is printed."""

import re

from rotator.cli.demo import mask_output, run_demo


def test_demo_runs_every_scenario_and_masks_secrets():
    lines: list[str] = []
    assert run_demo(say=lines.append) == 0
    text = "\n".join(lines)
    assert "all scenarios behaved as expected" in text
    assert text.count("(exit 0)") == 10 and text.count("(exit 2)") == 2
    assert "ci-deployer: rotated (recreate)" in text and "release-bot: rotated (refresh)" in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.", text)
    assert '"access_token": "***"' in text and '"refresh_token": "***"' in text


def test_mask_output_masks_json_and_table_values():
    assert mask_output('{\n  "refresh_token": "abc-def"\n}') == '{\n  "refresh_token": "***"\n}'
    assert mask_output("reference_token  cmVmdGtuXYZ\ntoken_id  id") == "reference_token  ***\ntoken_id  id"
