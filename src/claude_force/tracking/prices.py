"""USD prices per million tokens, as data (``prices.json``), and the cost of one call's :class:`Usage`.

The packaged table covers every model in ``anthropic.types.Model``; figures that are not published are marked
``estimated``. ``orchestrator.prices`` in the config (``Settings.prices``) overrides or adds models::

    "prices": {"claude-sonnet-5-5": {"input": 2.0, "output": 10.0},
               "my-proxy-model": {"input": 1.0, "output": 4.0, "cache_read_multiplier": 0.1}}

A model with no price is never guessed: :meth:`PriceTable.cost` logs one WARNING per model and returns
``None``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from claude_force.errors import ConfigError
from claude_force.models import Usage
from claude_force.security.sanitize import safe

logger = logging.getLogger("claude_force.tracking.prices")

PER_TOKEN = 1e-6  # prices are per million tokens
CACHE_TTLS = ("5m", "1h")
#: Keys accepted in one ``orchestrator.prices.<model>`` entry.
OVERRIDE_KEYS = frozenset(
    {
        "input",
        "output",
        "cache_read_multiplier",
        "cache_write_5m_multiplier",
        "cache_write_1h_multiplier",
        "min_cacheable_tokens",
    }
)
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True, slots=True)
class LongPromptPrice:
    """Rates for a whole call whose prompt (input + cache reads + cache writes) exceeds a threshold."""

    threshold_tokens: int
    input: float
    output: float


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's rates: USD per million tokens, cache multipliers relative to the input rate."""

    input: float
    output: float
    cache_write_5m: float = 1.25
    cache_write_1h: float = 2.0
    cache_read: float = 0.1
    min_cacheable_tokens: int = 1024
    estimated: bool = False
    min_cacheable_estimated: bool = False
    long_prompt: LongPromptPrice | None = None

    def rates(self, prompt_tokens: int) -> tuple[float, float]:
        """(input, output) USD per million tokens for a call whose prompt has ``prompt_tokens`` tokens."""
        lp = self.long_prompt
        if lp is not None and prompt_tokens > lp.threshold_tokens:
            return lp.input, lp.output
        return self.input, self.output

    def write_multiplier(self, cache_ttl: str | None) -> float:
        return self.cache_write_1h if cache_ttl == "1h" else self.cache_write_5m


class PriceTable:
    """Model prices and the cost of a call.

    Example::

        prices = PriceTable.load(settings.prices)
        usd = prices.cost("claude-sonnet-5-5", response.usage, cache_ttl="5m")  # None if unpriced
        prices.min_cacheable_tokens("claude-sonnet-5-5")  # 1024
    """

    __slots__ = ("_default_min", "_lock", "_models", "_warned", "retrieved")

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        *,
        default_min_cacheable_tokens: int = 1024,
        retrieved: str = "",
    ) -> None:
        self._models = dict(models)
        self._default_min = default_min_cacheable_tokens
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self.retrieved = retrieved

    @classmethod
    def load(
        cls, overrides: Mapping[str, Mapping[str, float]] | None = None, *, path: Path | None = None
    ) -> PriceTable:
        """The packaged table (or ``path``), with ``overrides`` (``Settings.prices``) applied on top.

        Raises :class:`~claude_force.errors.ConfigError` for a malformed override.
        """
        if path is None:
            raw = resources.files("claude_force.tracking").joinpath("prices.json").read_text("utf-8")
        else:
            raw = path.read_text("utf-8")
        data = json.loads(raw)
        defaults = {k: float(v) for k, v in data.get("multipliers", {}).items()}
        models = {name: _parse_model(entry, defaults) for name, entry in data["models"].items()}
        table = cls(
            models,
            default_min_cacheable_tokens=int(data.get("default_min_cacheable_tokens", 1024)),
            retrieved=str(data.get("retrieved", "")),
        )
        for name, entry in (overrides or {}).items():
            table._models[name] = _apply_override(name, table._models.get(name), entry, defaults)
        return table

    # --- lookup ---------------------------------------------------------------------------------------------

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def models(self) -> list[str]:
        return sorted(self._models)

    def get(self, model: str) -> ModelPrice | None:
        """The price of ``model``; a dated snapshot id (``<alias>-YYYYMMDD``) falls back to its alias."""
        price = self._models.get(model)
        if price is None:
            alias = _DATE_SUFFIX.sub("", model)
            if alias != model:
                price = self._models.get(alias)
        return price

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        logger.warning("no price for model %s; its cost is reported as unknown", safe(model))

    def min_cacheable_tokens(self, model: str) -> int:
        """The shortest prompt prefix the API will cache for ``model`` (the table's default if unknown)."""
        price = self.get(model)
        return self._default_min if price is None else price.min_cacheable_tokens

    # --- cost -----------------------------------------------------------------------------------------------

    def cost(self, model: str, usage: Usage, *, cache_ttl: str | None = "5m") -> float | None:
        """USD cost of one call. Cache writes are billed at the TTL's write multiplier (``None`` = the API's
        default, 5m), cache reads at the read multiplier. Unknown model: one WARNING, then ``None``."""
        price = self.get(model)
        if price is None:
            self._warn_unknown(model)
            return None
        return usage_cost(price, usage, cache_ttl=cache_ttl)

    def reserve_cost(
        self, model: str, *, input_tokens: int, max_output_tokens: int, cache_ttl: str | None
    ) -> float | None:
        """The most a call can cost: every input token at the cache-write rate when caching is on (a write
        costs more than plain input), and ``max_output_tokens`` of output. ``None`` for an unknown model."""
        price = self.get(model)
        if price is None:
            self._warn_unknown(model)
            return None
        in_rate, out_rate = price.rates(input_tokens)
        per_input = (
            in_rate * max(1.0, price.write_multiplier(cache_ttl)) if cache_ttl is not None else in_rate
        )
        return (input_tokens * per_input + max_output_tokens * out_rate) * PER_TOKEN

    def __repr__(self) -> str:
        return f"PriceTable(models={len(self._models)}, retrieved={self.retrieved!r})"


def usage_cost(price: ModelPrice, usage: Usage, *, cache_ttl: str | None = "5m") -> float:
    """USD cost of ``usage`` at ``price`` (see :meth:`PriceTable.cost`)."""
    cw = usage.cache_creation_input_tokens
    cr = usage.cache_read_input_tokens
    in_rate, out_rate = price.rates(usage.input_tokens + cw + cr)
    micro = (
        usage.input_tokens * in_rate
        + cw * in_rate * price.write_multiplier(cache_ttl)
        + cr * in_rate * price.cache_read
        + usage.output_tokens * out_rate
    )
    return micro * PER_TOKEN


# --- parsing ------------------------------------------------------------------------------------------------


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"price must be a number, got {type(value).__name__}", key=where)
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise ConfigError("price must be a finite number >= 0", key=where)
    return out


def _parse_model(entry: Mapping[str, Any], defaults: Mapping[str, float]) -> ModelPrice:
    mult = {**defaults, **entry.get("multipliers", {})}
    lp = entry.get("long_prompt")
    return ModelPrice(
        input=float(entry["input"]),
        output=float(entry["output"]),
        cache_write_5m=float(mult.get("cache_write_5m", 1.25)),
        cache_write_1h=float(mult.get("cache_write_1h", 2.0)),
        cache_read=float(mult.get("cache_read", 0.1)),
        min_cacheable_tokens=int(entry.get("min_cacheable_tokens", 1024)),
        estimated=bool(entry.get("estimated", False)),
        min_cacheable_estimated=bool(entry.get("min_cacheable_estimated", False)),
        long_prompt=None
        if lp is None
        else LongPromptPrice(int(lp["threshold_tokens"]), float(lp["input"]), float(lp["output"])),
    )


def _apply_override(
    name: str, base: ModelPrice | None, entry: Mapping[str, Any], defaults: Mapping[str, float]
) -> ModelPrice:
    where = f"orchestrator.prices.{safe(name, 80)}"
    if not isinstance(entry, Mapping):
        raise ConfigError('a price entry must be an object like {"input": 3.0, "output": 15.0}', key=where)
    unknown = set(entry) - OVERRIDE_KEYS
    if unknown:
        raise ConfigError(f"unknown price keys: {safe(sorted(unknown))}", key=where)
    if base is None:
        missing = {"input", "output"} - set(entry)
        if missing:
            raise ConfigError(f"a new model needs {' and '.join(sorted(missing))}", key=where)
        base = ModelPrice(
            input=0.0,
            output=0.0,
            cache_write_5m=defaults.get("cache_write_5m", 1.25),
            cache_write_1h=defaults.get("cache_write_1h", 2.0),
            cache_read=defaults.get("cache_read", 0.1),
        )
    changes: dict[str, Any] = {"estimated": False}
    for key, value in entry.items():
        rate = _rate(value, f"{where}.{key}")
        if key == "min_cacheable_tokens":
            changes[key] = int(rate)
            changes["min_cacheable_estimated"] = False
        elif key.endswith("_multiplier"):
            changes[key.removesuffix("_multiplier")] = rate
        else:
            changes[key] = rate
    if "input" in changes or "output" in changes:
        # A user's flat rate replaces the packaged long-prompt tier, which was computed for the old rates.
        changes["long_prompt"] = None
    return replace(base, **changes)
