"""Money as people and JSON read it: one formatter for every output, so one amount reads the same everywhere."""

from __future__ import annotations

JSON_DECIMALS = 6
"""USD amounts in JSON are rounded to a millionth of a dollar (no float noise such as 0.0087914000000001)."""


def usd_value(amount: float) -> float:
    """`amount` rounded for JSON."""
    return round(float(amount), JSON_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def usd_text(amount: float) -> str:
    """`$2.50`, `$0.0088`, `$1,234.00`: cents, or four decimals below a dollar so small calls still show."""
    amount = usd_value(amount)
    if amount and abs(amount) < 1:
        text = f"{amount:.4f}".rstrip("0")
        whole, _, cents = text.partition(".")
        return f"${whole}.{cents.ljust(2, '0')}"
    return f"${amount:,.2f}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 call`, `2 calls` (`many` for irregular plurals)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
