"""ISO 4217 currencies as data: numeric code → (alphabetic code, minor-unit exponent). Payment messages carry
the numeric code (ZVT BMP 49, ISO 8583 field 49); people read the alphabetic one. Only for display: events keep
the numeric code as the message carried it."""

from __future__ import annotations

CURRENCIES: dict[str, tuple[str, int]] = {
    "008": ("ALL", 2), "032": ("ARS", 2), "036": ("AUD", 2), "124": ("CAD", 2), "152": ("CLP", 0),
    "156": ("CNY", 2), "170": ("COP", 2), "191": ("HRK", 2), "203": ("CZK", 2), "208": ("DKK", 2),
    "344": ("HKD", 2), "348": ("HUF", 2), "352": ("ISK", 0), "356": ("INR", 2), "376": ("ILS", 2),
    "392": ("JPY", 0), "410": ("KRW", 0), "484": ("MXN", 2), "554": ("NZD", 2), "578": ("NOK", 2),
    "604": ("PEN", 2), "643": ("RUB", 2), "702": ("SGD", 2), "710": ("ZAR", 2), "752": ("SEK", 2),
    "756": ("CHF", 2), "784": ("AED", 2), "826": ("GBP", 2), "840": ("USD", 2), "858": ("UYU", 2),
    "941": ("RSD", 2), "946": ("RON", 2), "949": ("TRY", 2), "975": ("BGN", 2), "978": ("EUR", 2),
    "985": ("PLN", 2), "986": ("BRL", 2),
}


def format_amount(amount_minor: int, currency: str | None) -> str:
    """``1250, "978"`` → ``12.50 EUR``; an unknown or missing currency shows the minor units as they are."""
    known = CURRENCIES.get(currency or "")
    if known is None:
        suffix = f" (currency {currency})" if currency else ""
        return f"{amount_minor} minor units{suffix}"
    alpha, exponent = known
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10 ** exponent)
    return f"{sign}{units}.{minor:0{exponent}d} {alpha}" if exponent else f"{sign}{units} {alpha}"
