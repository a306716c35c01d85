"""Budget: reserve each attempt's worst-case USD cost before it is made, reconcile to the real cost after.

Admission is a single check-and-reserve with no ``await`` in between, so however many tasks run concurrently
on the loop, ``spent + reserved`` never exceeds ``budget_usd``, and as long as each call's real cost is at
most its reservation, neither does ``spent``. Amounts are kept in integer nano-dollars so sums never drift.

The layer sits inside the retry layer, so every attempt is reserved and settled on its own:

- a response: its real cost from ``usage``, or the whole reservation when it carried no usage;
- an error status (429, 529, 5xx, 4xx): nothing, the API does not bill those;
- a 200 that failed here (empty content, a malformed or oversize body): the cost of the usage it carried, or the
  whole reservation when its usage could not be read;
- an outcome that cannot be known (a timeout, a dropped connection or a cancellation after the transport sent
  the request): the whole reservation, since the API may have billed it;
- nothing sent (the connection never opened, or the attempt failed before the transport): nothing.

Worst case of one attempt = ``estimated_input_tokens() * input_margin`` at the input rate (at the cache-write
rate, 1.25x for 5m or 2x for 1h, when prompt caching is on, since a write costs more than plain input) plus
``max_tokens`` of output. A model without a price cannot be reserved for, so the call is refused.
"""

from __future__ import annotations

import logging
import math

from claude_force.errors import APIStatusError, BudgetExceeded, MalformedResponse
from claude_force.layers.base import Handler
from claude_force.models import Request, Response
from claude_force.security.sanitize import safe
from claude_force.tracking.prices import PriceTable

logger = logging.getLogger("claude_force.layers.budget")

NANO = 1_000_000_000
#: Multiplier on ``Request.estimated_input_tokens()`` (about 4 characters per token) when reserving, so the
#: reservation stays an upper bound: newer tokenizers count about 30% more tokens for the same text, and code
#: or non-English text tokenizes denser still. Raise it further for such prompts.
DEFAULT_INPUT_MARGIN = 1.5


def _nano(usd: float) -> int:
    # Rounded up, so a reservation is never below the true worst case (costs round alike: < 1 nano-USD).
    return math.ceil(usd * NANO)


class BudgetLayer:
    """Refuse calls that could take total spend past ``budget_usd``.

    Example::

        budget = BudgetLayer(budget_usd=5.0, prices=PriceTable.load(settings.prices))
        handler = compose([..., budget, ...], transport.send)
        budget.spent, budget.reserved, budget.remaining
    """

    __slots__ = (
        "_budget",
        "_failed_billed",
        "_prices",
        "_refused",
        "_reserved",
        "_spent",
        "_under_warned",
        "input_margin",
    )

    def __init__(
        self, *, budget_usd: float, prices: PriceTable, input_margin: float = DEFAULT_INPUT_MARGIN
    ) -> None:
        if not (math.isfinite(budget_usd) and budget_usd >= 0):  # rejects NaN and infinity too
            raise ValueError("budget_usd must be a finite number >= 0")
        if not input_margin >= 1.0:
            raise ValueError("input_margin must be >= 1.0")
        self._budget = _nano(budget_usd)
        self._prices = prices
        self._spent = 0
        self._reserved = 0
        self._refused = 0
        self._failed_billed = 0
        self._under_warned = False
        self.input_margin = input_margin

    @property
    def budget_usd(self) -> float:
        return self._budget / NANO

    @property
    def spent(self) -> float:
        """USD reconciled from real usage of finished calls."""
        return self._spent / NANO

    @property
    def reserved(self) -> float:
        """USD held for calls in flight."""
        return self._reserved / NANO

    @property
    def remaining(self) -> float:
        """USD still available for new reservations."""
        return max(0, self._budget - self._spent - self._reserved) / NANO

    @property
    def refused(self) -> int:
        return self._refused

    @property
    def failed_billed(self) -> int:
        """Failed attempts charged to ``spent``: billed 200s that failed here, and outcomes that cannot be known."""
        return self._failed_billed

    def worst_case(self, request: Request) -> float | None:
        """The reservation ``request`` needs, in USD (None if its model has no price).

        ``max_tokens`` below 1 is counted as 1: a request built by hand must never reserve less than nothing,
        which would lend its headroom to the calls in flight beside it.
        """
        tokens = request.estimated_input_tokens()
        if self.input_margin != 1.0:
            tokens = int(tokens * self.input_margin + 0.999999)
        return self._prices.reserve_cost(
            request.model,
            input_tokens=tokens,
            max_output_tokens=max(1, request.max_tokens),
            cache_ttl=request.prompt_cache_ttl,
        )

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        worst = self.worst_case(request)
        if worst is None:
            self._refused += 1
            raise BudgetExceeded(
                f"cannot enforce budget_usd: no price for model {safe(request.model, 80)}; "
                "add it under orchestrator.prices"
            )
        # A worst case too big for a float (absurd prices or max_tokens) can never fit in a finite budget.
        hold = _nano(worst) if math.isfinite(worst) else self._budget + 1
        if self._spent + self._reserved + hold > self._budget:
            self._refused += 1
            raise BudgetExceeded(
                f"budget exhausted: this call may cost up to ${worst:.4f}, "
                f"${self.remaining:.4f} of ${self.budget_usd:.2f} left"
            )
        self._reserved += hold
        ctx = request.context
        ctx.attempt_sent = False  # not sent until it reaches the transport (see CallContext.attempt_sent)
        try:
            response = await call_next(request)
        except BaseException as exc:
            self._reserved -= hold
            self._settle_failure(request, exc, hold)
            raise
        self._reserved -= hold
        if response.usage_missing:  # billed, but by how much is not known: the worst case
            self._spent += hold
            return response
        actual = self._prices.cost(request.model, response.usage, cache_ttl=request.prompt_cache_ttl)
        if actual is None:  # pragma: no cover - the reservation above proved the model is priced
            actual = worst
        cost = _nano(actual) if math.isfinite(actual) else self._budget + 1  # overflowed: the budget is gone
        self._warn_if_above(cost, hold)
        self._spent += cost
        return response

    def _warn_if_above(self, cost: int, hold: int) -> None:
        if cost > hold and not self._under_warned:
            self._under_warned = True
            logger.warning(
                "a call cost more than its reservation (%.6f > %.6f USD); raise input_margin",
                cost / NANO,
                hold / NANO,
            )

    def _settle_failure(self, request: Request, exc: BaseException, hold: int) -> None:
        """Charge a failed attempt what the API may have billed for it (see the module docstring)."""
        ctx = request.context
        if isinstance(exc, APIStatusError) or ctx.attempt_sent is False:
            return  # an error status is not billed; an attempt never sent cannot be (None: it may have been)
        usage = exc.usage if isinstance(exc, MalformedResponse) else None
        known = (
            None
            if usage is None
            else self._prices.cost(request.model, usage, cache_ttl=request.prompt_cache_ttl)
        )
        if known is not None and not math.isfinite(known):
            known = None  # an absurd price table: charge the reservation instead
        charged = hold if known is None else _nano(known)
        self._warn_if_above(charged, hold)
        self._spent += charged
        self._failed_billed += 1
        logger.debug(
            "budget: agent=%s failed attempt (%s) charged %.6f USD (%s)",
            safe(request.agent_name),
            getattr(exc, "code", type(exc).__name__),
            charged / NANO,
            "its usage" if known is not None else "its reservation: the API may have billed it",
        )

    def __repr__(self) -> str:
        return (
            f"BudgetLayer(budget=${self.budget_usd:.4f}, spent=${self.spent:.4f}, "
            f"reserved=${self.reserved:.4f}, remaining=${self.remaining:.4f}, refused={self._refused}, "
            f"failed_billed={self._failed_billed})"
        )
