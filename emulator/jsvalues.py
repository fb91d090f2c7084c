"""JavaScript's own behaviour where Studio's answers show it: JSON.parse with the error
messages of Node 18 (V8 10.2, the `node:18` image Studio's Dockerfile builds on),
decodeURIComponent, parseInt, String() and JSON.stringify.

Studio's list filters are `JSON.parse(decodeURIComponent(filters))` and its errors quote the
exception (`error parsing filters: SyntaxError: Unexpected token o in JSON at position 1`),
so the emulator reproduces the parser's wording, not Python's. Positions count UTF-16 code
units, as JavaScript strings do.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any, NoReturn


class JsError(Exception):
    """A JavaScript exception: `str()` is what `${error}` prints (`Name: message`)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class _Undefined:
    """JavaScript's undefined (a property that is missing), as String() prints it."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Any = _Undefined()

# -- JSON.parse (V8 10.2's JsonParser) -------------------------------------------------------

_END = -1
_STRING, _NUMBER, _OTHER = "string", "number", "other"
_WHITESPACE = frozenset(map(ord, " \t\n\r"))
_DIGITS = frozenset(map(ord, "0123456789"))
_NUMBER_PART = _DIGITS | frozenset(map(ord, ".eE+-"))
_HEX = {ord(c): int(c, 16) for c in "0123456789abcdefABCDEF"}
_ESCAPES = {ord('"'): 0x22, ord("\\"): 0x5C, ord("/"): 0x2F, ord("b"): 0x08, ord("f"): 0x0C}
_ESCAPES |= {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09}


def _kind(unit: int) -> str:
    """The token class V8 reports a character as: a string, a number, or its own text."""
    if unit == ord('"'):
        return _STRING
    if unit == ord("-") or unit in _DIGITS:
        return _NUMBER
    return _OTHER


def utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack(f"<{len(data) // 2}H", data))


def from_units(units: list[int]) -> str:
    # surrogatepass pairs high+low surrogates back into one character and keeps lone ones.
    return struct.pack(f"<{len(units)}H", *units).decode("utf-16-le", "surrogatepass")


class _JsonParser:
    """JSON.parse, iterative as V8's is (no depth limit), failing where and as V8 does."""

    def __init__(self, text: str) -> None:
        self.units = utf16_units(text)
        self.pos = 0

    def cur(self) -> int:
        return self.units[self.pos] if self.pos < len(self.units) else _END

    def fail(self, unit: int) -> NoReturn:
        """V8's ReportUnexpectedCharacter/ReportUnexpectedToken at the cursor."""
        if unit == _END:
            raise JsError("SyntaxError", "Unexpected end of JSON input")
        kind = _kind(unit)
        if kind == _STRING:
            raise JsError("SyntaxError", f"Unexpected string in JSON at position {self.pos}")
        if kind == _NUMBER:
            raise JsError("SyntaxError", f"Unexpected number in JSON at position {self.pos}")
        shown = chr(self.units[self.pos])
        raise JsError("SyntaxError", f"Unexpected token {shown} in JSON at position {self.pos}")

    def skip_whitespace(self) -> int:
        while self.cur() in _WHITESPACE:
            self.pos += 1
        return self.cur()

    def check(self, char: str) -> bool:
        if self.skip_whitespace() == ord(char):
            self.pos += 1
            return True
        return False

    def expect(self, char: str) -> None:
        """V8's Expect after a Check: the cursor already stands on the next token."""
        if self.cur() != ord(char):
            self.fail(self.cur())
        self.pos += 1

    def key(self) -> str:
        if self.skip_whitespace() != ord('"'):
            self.fail(self.cur())
        key = self.string()
        self.skip_whitespace()
        self.expect(":")
        return key

    def parse(self) -> Any:
        stack: list[tuple[dict[str, Any] | list[Any], str]] = []
        while True:
            value, opened = self.value()
            if opened is not None:
                stack.append(opened)
                continue
            while True:
                if not stack:
                    if self.skip_whitespace() != _END:
                        self.fail(self.cur())
                    return value
                container, name = stack[-1]
                if isinstance(container, dict):
                    container[name] = value
                    if self.check(","):
                        stack[-1] = (container, self.key())
                        break
                    self.expect("}")
                else:
                    container.append(value)
                    if self.check(","):
                        break
                    self.expect("]")
                value = container
                stack.pop()

    def value(self) -> tuple[Any, tuple[dict[str, Any] | list[Any], str] | None]:
        """A scalar or empty container, or (None, the container just opened)."""
        unit = self.skip_whitespace()
        if unit == ord('"'):
            return self.string(), None
        if unit == ord("-") or unit in _DIGITS:
            return self.number(), None
        if unit == ord("{"):
            self.pos += 1
            if self.check("}"):
                return {}, None
            return None, ({}, self.key())
        if unit == ord("["):
            self.pos += 1
            if self.check("]"):
                return [], None
            return None, ([], "")
        for word, meaning in (("true", True), ("false", False), ("null", None)):
            if unit == ord(word[0]):
                self.literal(word)
                return meaning, None
        self.fail(unit)

    def literal(self, word: str) -> None:
        expected = [ord(c) for c in word]
        remaining = len(self.units) - self.pos
        if self.units[self.pos : self.pos + len(word)] == expected:
            self.pos += len(word)
            return
        self.pos += 1
        for i in range(min(len(word) - 1, remaining - 1)):
            if self.cur() != expected[1 + i]:
                self.fail(self.cur())
            self.pos += 1
        self.fail(_END)

    def digits(self) -> None:
        while self.cur() in _DIGITS:
            self.pos += 1

    def number(self) -> int | float:
        start = self.pos
        if self.cur() == ord("-"):
            self.pos += 1
        if self.cur() == ord("0"):
            self.pos += 1
            if self.cur() in _DIGITS:
                self.fail(self.cur())  # "Unexpected number": no leading zeros
        else:
            if self.cur() not in _DIGITS:
                self.fail(self.cur())
            self.digits()
        if self.cur() == ord("."):
            self.pos += 1
            if self.cur() not in _DIGITS:
                self.fail(self.cur())
            self.digits()
        if self.cur() in (ord("e"), ord("E")):
            self.pos += 1
            if self.cur() in (ord("+"), ord("-")):
                self.pos += 1
            if self.cur() not in _DIGITS:
                self.fail(self.cur())
            self.digits()
        literal = from_units(self.units[start : self.pos])
        # Sixteen digits at most hold an exact integer (2**53); int() refuses past 4,300.
        if literal.lstrip("-").isdigit() and len(literal) <= 17 and abs(int(literal)) <= 2**53:
            return int(literal)
        return float(literal)  # a double, as JavaScript reads it (1e999 is Infinity)

    def string(self) -> str:
        self.pos += 1  # the opening quote
        out: list[int] = []
        while True:
            unit = self.cur()
            if unit == _END:
                self.fail(_END)
            if unit == ord('"'):
                self.pos += 1
                return from_units(out)
            if unit == ord("\\"):
                self.pos += 1
                escaped = self.cur()
                if escaped == ord("u"):
                    code = 0
                    for _ in range(4):
                        self.pos += 1
                        if self.cur() not in _HEX:
                            self.fail(self.cur())
                        code = code * 16 + _HEX[self.cur()]
                    out.append(code)
                elif escaped in _ESCAPES:
                    out.append(_ESCAPES[escaped])
                else:
                    self.fail(escaped)
            elif unit < 0x20:
                self.fail(unit)
            else:
                out.append(unit)
            self.pos += 1


def json_parse(text: str) -> Any:
    """JSON.parse(text): objects as dicts, numbers as int (when exact) or float."""
    return _JsonParser(text).parse()


# -- decodeURIComponent, parseInt ------------------------------------------------------------

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def decode_uri_component(text: str) -> str:
    """decodeURIComponent: URIError("URI malformed") on a bad escape or bad UTF-8."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "%":
            j = text.find("%", i)
            j = len(text) if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        octets = bytearray()
        first = _PERCENT.match(text, i)
        if first is None:
            raise JsError("URIError", "URI malformed")
        octets.append(int(first.group(1), 16))
        i += 3
        lead = octets[0]
        more = 0 if lead < 0x80 else 1 if lead >> 5 == 6 else 2 if lead >> 4 == 14 else 3
        if lead >= 0x80 and lead >> 3 > 30:
            raise JsError("URIError", "URI malformed")
        if 0x80 <= lead < 0xC0:
            raise JsError("URIError", "URI malformed")
        for _ in range(more):
            follow = _PERCENT.match(text, i)
            if follow is None or int(follow.group(1), 16) >> 6 != 2:
                raise JsError("URIError", "URI malformed")
            octets.append(int(follow.group(1), 16))
            i += 3
        try:
            out.append(octets.decode("utf-8"))  # strict: no overlong forms, no surrogates
        except UnicodeDecodeError:
            raise JsError("URIError", "URI malformed") from None
    return "".join(out)


# StrWhiteSpaceChar: WhiteSpace and LineTerminator, what parseInt skips first.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_JS_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_LEADING_INT = re.compile(r"([+-]?)(?:(0[xX])([0-9A-Fa-f]+)|([0-9]+))")


def parse_int(text: str) -> int | None:
    """parseInt(text) without a radix: None for NaN. "12abc" is 12, "0x10" is 16."""
    match = _LEADING_INT.match(text.lstrip(_JS_SPACE))
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    if match.group(3):
        return sign * int(match.group(3)[:400], 16)  # past a double either way
    return sign * int(match.group(4)[:400])


# -- String(), JSON.stringify ----------------------------------------------------------------


def number_string(value: float) -> str:
    """Number.prototype.toString() for a double."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    # Here, not at the top: only String() of a fractional or huge number (a list filter's
    # value) gets this far, and importing decimal costs ~1 ms of every start.
    from decimal import Decimal

    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that read back as the same double, as JavaScript does.
    _, digits_tuple, exponent = Decimal(repr(abs(float(value)))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + int(exponent)  # the decimal point sits after n digits
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_string(value: Any) -> str:
    """String(value) for what JSON.parse makes (plus undefined): arrays join with commas
    (null inside them prints nothing), objects print [object Object]."""
    if not isinstance(value, list):
        return _scalar_string(value)
    out: list[str] = []
    stack: list[tuple[list[Any], int]] = [(value, 0)]
    while stack:  # iterative: parsed arrays may nest thousands of levels deep
        items, i = stack.pop()
        if i >= len(items):
            continue
        if i:
            out.append(",")
        stack.append((items, i + 1))
        item = items[i]
        if isinstance(item, list):
            stack.append((item, 0))
        elif item is not None and item is not UNDEFINED:
            out.append(_scalar_string(item))
    return "".join(out)


def _scalar_string(value: Any) -> str:
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_string(float(value)) if abs(value) >= 2**53 else _int_or(value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _int_or(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else number_string(float(value))


# Compiled on first use: a character class with the surrogate range takes ~0.5 ms to
# compile, paid at every start otherwise (issue 16: start time).
_NEEDS_ESCAPE = r'["\\\x00-\x1f\ud800-\udfff]'
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT_ESCAPES["\t"] = "\\t"


def quote(text: str) -> str:
    """JSON.stringify(string), well-formed: lone surrogates as \\uXXXX escapes."""
    return '"' + re.sub(_NEEDS_ESCAPE, _escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def stringify(value: Any) -> str:
    """JSON.stringify(value), compact, for what JSON.parse makes."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{quote(k)}:{stringify(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(stringify(v) for v in value) + "]"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    return _scalar_string(value)
