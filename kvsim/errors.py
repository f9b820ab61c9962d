"""The errors kvsim raises on bad input.

Every one of them renders as a single line that a user can act on: for a configuration
value, the key, the value given and what is allowed; for a trace file, the file, the line
and the column.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration value, found before any work starts.

    >>> str(ConfigError("block_size", 0, "an integer >= 1"))
    'block_size=0 is not allowed: expected an integer >= 1'
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}={value!r} is not allowed: expected {allowed}")


def check_int(key: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise ConfigError if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, value, f"an integer >= {minimum}")
    return value


def check_fraction(
    key: str, value: object, *, low_open: bool = True, high_open: bool = True
) -> float:
    """Return ``value`` as a float inside the interval (0, 1) with the given openness."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)
    if not ok:
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ConfigError(key, value, f"a number in {interval}")
    return float(value)
