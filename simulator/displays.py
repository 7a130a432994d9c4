"""Customer pole display streams as a till sends them: item lines with prices, subtotals and totals, change due,
a welcome message scrolling, in the Epson DM-D and CD5220 command sets (docs/protocols/display.md). Used for the
sample captures in ``sessions/display/`` (``python -m simulator.displays --out sessions/display``) and the 1 MiB
benchmark corpus."""

from __future__ import annotations

import random
from collections.abc import Iterable

from simulator.captures import main as captures_main

WIDTH = 20
ITEMS = ["Milk 1L", "Bread", "Butter 250g", "Apples 1kg", "Coffee beans", "Eggs x10", "Cheddar", "Orange juice",
         "Bananas", "Yoghurt", "Pasta 500g", "Tomatoes", "Olive oil", "Chocolate", "Water 6x1.5L"]
WELCOME = ["WELCOME!", "Thank you for shopping", "Have a nice day", "Next customer please"]


def _row(left: str, right: str = "") -> str:
    return (left[:WIDTH - len(right) - 1].ljust(WIDTH - len(right)) + right)[:WIDTH]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def epson_update(upper: str, lower: str) -> bytes:
    """The usual Epson-mode refresh: CLR, upper row, US $ 1 2, lower row."""
    return b"\x0c" + upper.encode("cp437") + b"\x1f\x24\x01\x02" + lower.encode("cp437")


def cd5220_update(upper: str, lower: str) -> bytes:
    """CD5220 string mode: ESC Q A upper CR, ESC Q B lower CR (what lcdproc's serialPOS driver sends)."""
    return b"\x1bQA" + upper.encode("cp437") + b"\r\x1bQB" + lower.encode("cp437") + b"\r"


def basket(rng: random.Random, dialect: str) -> bytes:
    """One customer: a welcome, each item with its price and the running total, the total, payment and change."""
    update = epson_update if dialect == "epson" else cd5220_update
    out = []
    if dialect == "epson":
        out.append(b"\x1b\x40\x1f\x58" + bytes([rng.randint(1, 4)]) + b"\x1f\x03" + rng.choice(WELCOME).encode()
                   + b"\x1f\x01")
    else:
        out.append(b"\x1b\x40\x1b\x2a" + bytes([rng.randint(1, 4)]) + b"\x1bQD" + rng.choice(WELCOME).encode()
                   + b"\r")
    total = 0
    for _ in range(rng.randint(1, 12)):
        name, qty, price = rng.choice(ITEMS), rng.choice([1, 1, 1, 2, 3]), rng.randint(49, 1999)
        total += qty * price
        left = name if qty == 1 else f"{qty} x {name}"
        out.append(update(_row(left, _money(qty * price)), _row("Subtotal", _money(total))))
    out.append(update(_row("TOTAL"), _row("EUR", _money(total))))
    paid = (total // 500 + 1) * 500
    out.append(update(_row("Cash", _money(paid)), _row("Change", _money(paid - total))))
    return b"".join(out)


def session(dialect: str, seed: int = 1, customers: int = 2) -> bytes:
    rng = random.Random(seed)
    return b"".join(basket(rng, dialect) for _ in range(customers))


def corpus(size: int, dialect: str = "epson", seed: int = 3) -> bytes:
    rng = random.Random(seed)
    parts, n = [], 0
    while n < size:
        part = basket(rng, dialect)
        parts.append(part)
        n += len(part)
    return b"".join(parts)


def captures() -> dict[str, bytes]:
    return {f"basket.{dialect}.bin": session(dialect) for dialect in ("epson", "cd5220")}


def main(argv: Iterable[str] | None = None) -> int:
    return captures_main("displays", __doc__, "sessions/display", captures, argv)


if __name__ == "__main__":
    raise SystemExit(main())
