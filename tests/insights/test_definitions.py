"""Signal files: the shipped defaults, overrides, and errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.errors import Invalid
from cxm.insights.definitions import load, parse_condition


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mine.yaml").write_text(text, encoding="utf-8")
    return folder


def test_shipped_signals_are_the_five_demo_frictions_at_their_touchpoints() -> None:
    signals = load()
    assert {k: s.touchpoints for k, s in signals.items()} == {
        "late_delivery": ("delivery",),
        "damaged_item": ("delivery",),
        "billing_error": ("invoice",),
        "repeat_contact": ("support_phone", "support_chat"),
        "long_wait": ("support_phone", "support_chat"),
    }


def test_an_installation_file_replaces_a_shipped_signal_and_adds_its_own(tmp_path: Path) -> None:
    folder = _write(tmp_path / "signals", """
signals:
  long_wait:
    label: Very long wait
    touchpoints: [support_phone]
    when: name == "ticket_closed" and properties.wait_minutes >= 45
  failed_payment:
    label: Failed payment
    touchpoints: [invoice]
    when: name in ["payment_failed", "card_declined"]
""")  # fmt: skip
    signals = load(folder)
    assert signals["long_wait"].label == "Very long wait"
    assert signals["long_wait"].touchpoints == ("support_phone",)
    assert "failed_payment" in signals
    assert "late_delivery" in signals


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("wait_minutes > 20", "unknown field 'wait_minutes'; fields: name, type"),
        ('name = "x"', "is not a condition"),
        ('properties.topic > "billing"', "compares with a number"),
        ("name == 3", "name is a string"),
        ("properties.x is 3", "write 'is null' or 'is not null'"),
        ('name == "a" + "b"', "is not a value"),
        ("name", "is not a comparison"),
        ("properties.k in 3", "'in' needs a list"),
    ],
)
def test_a_bad_condition_names_the_problem(when: str, message: str) -> None:
    with pytest.raises(Invalid, match=r"signals\.s\.when") as info:
        parse_condition(when, "signals.s.when")
    assert message in str(info.value)


def test_a_bad_signal_file_names_the_file_line_and_field(tmp_path: Path) -> None:
    folder = _write(tmp_path / "signals", """
signals:
  slow_refund:
    label: Slow refund
    touchpoints: [returns]
    when: name == "refund_issued" and propertes.days > 14
""")  # fmt: skip
    with pytest.raises(Invalid) as info:
        load(folder)
    text = str(info.value)
    assert "mine.yaml line 6" in text and "slow_refund" in text and "propertes" in text


def test_a_signal_without_touchpoints_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = _write(tmp_path / "signals", "signals:\n  x:\n    label: X\n    when: name == 'a'\n")
    with pytest.raises(Invalid, match=r"mine.yaml line 2, signals.x.touchpoints: Field required"):
        load(folder)


def test_cli_lists_signals_and_exits_2_on_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    listed = CliRunner().invoke(cli, ["insights", "signals", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "properties.repeat_of is not null" in listed.output
    _write(tmp_path / "signals", "signals:\n  Bad Key:\n    label: X\n    touchpoints: [a]\n"
           "    when: name == 'a'\n")  # fmt: skip
    broken = CliRunner().invoke(cli, ["insights", "signals"])
    assert broken.exit_code == 2
    assert "a signal key is lower-case letters" in broken.output
