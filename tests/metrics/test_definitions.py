"""Loading metric definitions: shipped defaults, overrides, and errors at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxm.errors import Invalid
from cxm.metrics.definitions import load

REQUIRED = {
    "nps", "csat", "csat_mean", "ces", "ces_agree", "response_rate", "completion_rate", "enps",
    "churn_rate", "retention_rate", "repeat_contact_rate", "first_contact_resolution",
    "time_to_resolution", "on_time_delivery_rate", "revenue_per_customer",
    "customer_lifetime_value", "renewal_cancellation_rate", "renewal_rate", "active_customers",
    "new_customers", "churned_customers", "retained_customers", "logo_churn_rate",
    "gross_revenue_retention", "net_revenue_retention", "cohort_retention",
}  # fmt: skip


def test_shipped_definitions_load_and_cover_the_issue_list() -> None:
    metrics = load()
    assert set(metrics) >= REQUIRED
    assert metrics["nps"].owner == "executive" and metrics["churn_rate"].direction == "lower"


def test_churn_rate_and_logo_churn_rate_are_one_definition_on_the_active_base() -> None:
    metrics = load()
    churn, logo = metrics["churn_rate"], metrics["logo_churn_rate"]
    same = ("kind", "fact", "filters", "success", "unit", "direction", "lifecycle")
    assert all(getattr(churn, a) == getattr(logo, a) for a in same)
    assert churn.fact == "customer_periods" and churn.filters == {"active_at_start": True}
    assert metrics["renewal_cancellation_rate"].filters == {
        "name": ["subscription_renewed", "subscription_cancelled"]
    }


def test_the_lifecycle_is_one_company_wide_block_an_installation_can_replace(
    tmp_path: Path,
) -> None:
    shipped = load()["churn_rate"].lifecycle
    assert shipped is not None and shipped.churn == ("subscription_cancelled",)
    path = _write(tmp_path, """
lifecycle:
  acquisition: [contract_signed]
  churn: [contract_ended]
  revenue: [invoice_paid]
""")  # fmt: skip
    metrics = load(path)
    assert {m.lifecycle for m in metrics.values() if m.fact == "customer_periods"} == {
        metrics["logo_churn_rate"].lifecycle
    }
    assert metrics["net_revenue_retention"].lifecycle.acquisition == ("contract_signed",)  # type: ignore[union-attr]


def test_a_lifecycle_without_churn_events_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "lifecycle:\n  acquisition: [a]\n  churn: []\n  revenue: [r]\n")
    with pytest.raises(Invalid, match="churn"):
        load(path)


def test_a_ratio_needs_numeric_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, """
metrics:
  odd:
    description: x
    kind: ratio
    fact: customer_periods
    column: cohort
    base: revenue_start
""")  # fmt: skip
    with pytest.raises(Invalid, match=r"odd.*a ratio needs a numeric column"):
        load(path)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ours.yaml"
    path.write_text(text)
    return path


def test_an_installation_file_overrides_a_shipped_metric(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  nps:
    description: Our NPS
    kind: nps
    fact: responses
    column: nps
    target: 45
""",
    )
    assert load(path)["nps"].target == 45


def test_unknown_column_names_file_line_metric_and_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  loyalty:
    description: x
    kind: mean
    fact: responses
    column: loyalty_score
""",
    )
    with pytest.raises(Invalid) as exc:
        load(path)
    msg = str(exc.value)
    assert str(path) in msg and "line 3" in msg and "'loyalty'" in msg
    assert "unknown column 'loyalty_score'" in msg


def test_a_value_of_the_wrong_type_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  happy:
    description: x
    kind: proportion
    fact: responses
    success: {nps: "nine"}
""",
    )
    with pytest.raises(Invalid, match=r"happy.*'nine' does not match the column's type \(int\)"):
        load(path)


def test_a_mean_over_a_text_column_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  m:
    description: x
    kind: mean
    fact: responses
    column: channel
""",
    )
    with pytest.raises(Invalid, match="'channel' is string, a mean needs a number"):
        load(path)


def test_a_circular_reference_is_reported_with_its_cycle(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  a: {description: x, kind: derived, formula: b * 2}
  b: {description: x, kind: derived, formula: a + nps}
""",
    )
    with pytest.raises(Invalid, match=r"circular reference a -> b -> a"):
        load(path)


def test_a_formula_naming_an_unknown_metric_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "metrics:\n  a: {description: x, kind: derived, formula: zz / 2}\n")
    with pytest.raises(Invalid, match="unknown metric 'zz'"):
        load(path)


def test_unknown_fields_are_reported_with_their_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
metrics:
  a:
    description: x
    kind: nps
    fact: responses
    column: nps
    colour: red
""",
    )
    with pytest.raises(Invalid, match=r"line 8, metrics\.a\.colour"):
        load(path)


NPS_FILE = """
metrics:
  nps:
    description: Our NPS
    kind: nps
    fact: responses
    column: nps
    target: {target}
"""


def test_an_edited_file_is_read_again_and_an_unchanged_one_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxm.metrics import definitions

    path = _write(tmp_path, NPS_FILE.format(target=45))
    assert load(path)["nps"].target == 45
    parsed: list[int] = []
    real = definitions._parse
    monkeypatch.setattr(definitions, "_parse", lambda files: parsed.append(1) or real(files))
    first, again = load(path), load(path)
    assert parsed == [] and first["nps"] is again["nps"] and first is not again
    # Same size, written at once: a modification time could be the same; the content is not.
    path.write_text(NPS_FILE.format(target=55), encoding="utf-8")
    assert load(path)["nps"].target == 55 and parsed == [1]
    path.unlink()
    assert load(path)["nps"].target == load()["nps"].target != 55


def test_a_broken_file_is_reported_on_every_load_not_remembered(tmp_path: Path) -> None:
    path = _write(tmp_path, NPS_FILE.format(target=45))
    load(path)
    path.write_text(NPS_FILE.format(target="high"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(Invalid, match="target"):
            load(path)
    path.write_text(NPS_FILE.format(target=40), encoding="utf-8")
    assert load(path)["nps"].target == 40
