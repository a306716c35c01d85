from __future__ import annotations

import json
import logging
import math
import typing
from importlib import resources

import pytest

from claude_force.errors import ConfigError
from claude_force.models import Usage
from claude_force.settings import resolve_settings
from claude_force.tracking.prices import PriceTable


def sdk_models() -> list[str]:
    anthropic_types = pytest.importorskip("anthropic.types")
    literal = typing.get_args(anthropic_types.Model)[0]
    names = list(typing.get_args(literal))
    assert names, "anthropic.types.Model lists no models"
    return names


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_every_sdk_model_has_a_price(prices: PriceTable) -> None:
    for name in sdk_models():
        price = prices.get(name)
        assert price is not None, name
        assert price.input > 0 and price.output > price.input
        assert price.min_cacheable_tokens in (512, 1024, 2048, 4096)


def test_data_file_records_source_date_and_estimates() -> None:
    data = json.loads(resources.files("claude_force.tracking").joinpath("prices.json").read_text("utf-8"))
    assert data["retrieved"] and data["sources"]["pricing"].startswith("https://")
    assert data["multipliers"] == {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
    for name, entry in data["models"].items():
        assert isinstance(entry["estimated"], bool), name
    # No published figure: marked, not silently presented as fact.
    assert data["models"]["claude-fable-5-2"]["estimated"] is True


def test_known_published_prices(prices: PriceTable) -> None:
    expected = {
        "claude-opus-4-5": (5.0, 25.0),
        "claude-opus-4-6": (5.0, 25.0),
        "claude-sonnet-4-5": (3.0, 15.0),
        "claude-haiku-4-5": (1.0, 5.0),
        "claude-sonnet-5-5": (2.0, 10.0),
    }
    for name, (inp, out) in expected.items():
        price = prices.get(name)
        assert price is not None
        assert (price.input, price.output) == (inp, out)


def test_hand_computed_cost_to_the_cent(prices: PriceTable) -> None:
    usage = Usage(
        input_tokens=1_234,
        output_tokens=5_678,
        cache_creation_input_tokens=2_000,
        cache_read_input_tokens=10_000,
    )
    # Sonnet 4.5 at $3 / $15 per MTok:
    #   input        1,234 x $3.00          = $0.003702
    #   output       5,678 x $15.00         = $0.085170
    #   cache write  2,000 x $3.00 x 1.25   = $0.007500
    #   cache read  10,000 x $3.00 x 0.10   = $0.003000
    #                                  total = $0.099372
    cost = prices.cost("claude-sonnet-4-5", usage)
    assert cost is not None
    assert round(cost, 2) == 0.10
    assert cost == pytest.approx(0.099372, abs=1e-12)
    # A 1h cache write costs 2x instead of 1.25x: + 2,000 x $3 x 0.75 = + $0.0045.
    assert prices.cost("claude-sonnet-4-5", usage, cache_ttl="1h") == pytest.approx(0.103872, abs=1e-12)
    # Sonnet 5.5 reads the cache at 0.05x ($0.10/MTok).
    assert prices.cost("claude-sonnet-5-5", Usage(cache_read_input_tokens=1_000_000)) == pytest.approx(0.10)


def test_long_prompt_tier_applies_to_the_whole_call(prices: PriceTable) -> None:
    short = prices.cost("claude-haiku-5-5", Usage(input_tokens=100_000, output_tokens=1_000_000))
    long = prices.cost("claude-haiku-5-5", Usage(input_tokens=90_000, cache_read_input_tokens=10_001))
    assert short == pytest.approx(100_000 * 0.1e-6 + 0.5)
    assert long == pytest.approx(90_000 * 0.5e-6 + 10_001 * 0.05e-6)


def test_unknown_model_warns_once_and_returns_none(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable.load()
    with caplog.at_level(logging.WARNING, logger="claude_force.tracking.prices"):
        assert table.cost("gpt-imaginary\x1b[2J", Usage(10, 10)) is None
        assert table.cost("gpt-imaginary\x1b[2J", Usage(10, 10)) is None
        assert table.reserve_cost("other", input_tokens=1, max_output_tokens=1, cache_ttl=None) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "\x1b" not in messages[0] and "\\x1b" in messages[0]


def test_dated_snapshot_falls_back_to_alias(prices: PriceTable) -> None:
    assert prices.get("claude-sonnet-5-5-20261201") == prices.get("claude-sonnet-5-5")
    assert prices.get("claude-sonnet-5-5-preview") is None
    assert "claude-opus-5" in prices and "nope" not in prices


def test_min_cacheable_tokens(prices: PriceTable) -> None:
    assert prices.min_cacheable_tokens("claude-sonnet-4-5") == 1024
    assert prices.min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert prices.min_cacheable_tokens("claude-opus-5") == 512
    assert prices.min_cacheable_tokens("unknown-model") == 1024


def test_reserve_cost_uses_write_rate_when_caching(prices: PriceTable) -> None:
    plain = prices.reserve_cost("claude-sonnet-4-5", input_tokens=1000, max_output_tokens=100, cache_ttl=None)
    five = prices.reserve_cost("claude-sonnet-4-5", input_tokens=1000, max_output_tokens=100, cache_ttl="5m")
    hour = prices.reserve_cost("claude-sonnet-4-5", input_tokens=1000, max_output_tokens=100, cache_ttl="1h")
    assert plain == pytest.approx((1000 * 3 + 100 * 15) * 1e-6)
    assert five == pytest.approx((1000 * 3.75 + 100 * 15) * 1e-6)
    assert hour == pytest.approx((1000 * 6 + 100 * 15) * 1e-6)


def test_overrides_change_and_add_models() -> None:
    table = PriceTable.load(
        {
            "claude-sonnet-4-5": {"input": 1.0, "output": 2.0},
            "my-proxy": {
                "input": 0.5,
                "output": 1.5,
                "cache_read_multiplier": 0.2,
                "min_cacheable_tokens": 256,
            },
        }
    )
    sonnet = table.get("claude-sonnet-4-5")
    assert sonnet is not None and (sonnet.input, sonnet.output, sonnet.long_prompt) == (1.0, 2.0, None)
    assert table.cost("my-proxy", Usage(cache_read_input_tokens=1_000_000)) == pytest.approx(0.1)
    assert table.min_cacheable_tokens("my-proxy") == 256
    partial = PriceTable.load({"claude-opus-5": {"output": 30.0}}).get("claude-opus-5")
    assert partial is not None and (partial.input, partial.output) == (5.0, 30.0)


def test_overrides_come_from_settings() -> None:
    settings = resolve_settings(env={}, config_block={"prices": {"house-model": {"input": 2, "output": 8}}})
    table = PriceTable.load(settings.prices)
    assert table.cost("house-model", Usage(1_000_000, 1_000_000)) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"input": 1.0}, "needs output"),
        ({"input": 1.0, "output": -2.0}, ">= 0"),
        ({"input": 1.0, "output": math.nan}, "finite"),
        ({"input": True, "output": 1.0}, "number"),
        ({"input": 1.0, "output": 1.0, "cache_read": 0.1}, "unknown price keys"),
    ],
)
def test_bad_overrides_raise_config_error(entry: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        PriceTable.load({"new-model": entry})
    assert info.value.key is not None and info.value.key.startswith("orchestrator.prices.new-model")
