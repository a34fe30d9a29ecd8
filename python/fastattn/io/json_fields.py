"""JSON files and typed access to the objects they hold.

`read_json_object` reads a file that must hold one JSON object (config.json, a checkpoint's
index); `JsonFields` reads the entries of such an object one by one, checked as a kind (int,
float, ...), with a range or a default, remembering which keys were read so that the rest can
be kept as they are, and naming the key and the file in every error.
"""
from __future__ import annotations

import json
import math
import os
import reprlib
from collections.abc import Mapping

REQUIRED = object()   # JsonFields.get's default: the key must be there
# An integer a config interprets (a size, a count, an id) must fit NumPy's int64 / npy_intp:
# beyond it nothing can be allocated or indexed, and a huge value would only fail (or hang)
# later, far from the key that caused it.
MAX_INT = 2**63 - 1
# config.json is a few KB and a checkpoint index under a few MB; like the safetensors header
# (JSON too), a file above 100 MB is refused before it is read, not parsed into all the memory.
MAX_JSON_BYTES = 100_000_000

# JSON values in error messages: a few items of a list, a few digits of a number, so that a
# crafted file cannot make the message itself huge or slow to build.
brief = reprlib.Repr()
brief.maxlist = brief.maxdict = 6
brief.maxlong = brief.maxstring = brief.maxother = 40


def no_duplicate_keys(pairs) -> dict:
    """json's object_pairs_hook refusing a key given twice (json.loads keeps the last one
    silently: which of two values a file meant is a guess)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class MissingKeyError(ValueError, KeyError):
    """A required key is absent (or null). A ValueError like every other config error, and a
    KeyError, which is what a plain dict lookup of the missing key gives (numpy's AxisError is
    a ValueError and an IndexError the same way)."""

    __str__ = ValueError.__str__   # the message as written, not KeyError's repr of it


class JsonFields:
    """Typed access to a JSON object `raw`; `where` (a file name, "(dict)") heads the errors."""

    def __init__(self, raw: dict, where: str):
        self.raw, self.where, self.used = raw, where, set()

    def error(self, message: str, kind=ValueError):
        raise kind(f"config {self.where}: {message}")

    def get(self, key: str, kind: str, default=REQUIRED, *, nullable=False, minimum=None):
        """raw[key] checked as kind ("int", "float", "bool", "str", "dict", "list").
        Absent: default (an error when required). null: None when nullable, else the default."""
        self.used.add(key)
        value = self.raw.get(key)
        if value is None:
            if key in self.raw and nullable:
                return None
            if default is REQUIRED:
                self.error(f"{key!r} is required" + (" (got null)" if key in self.raw else ""),
                           MissingKeyError)
            return default
        return self.check(key, value, kind, minimum)

    def check(self, key: str, value, kind: str, minimum=None):
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": (isinstance(value, (int, float)) and not isinstance(value, bool)
                        and math.isfinite(value)),
              "bool": isinstance(value, bool),
              "str": isinstance(value, str),
              "dict": isinstance(value, dict),
              "list": isinstance(value, list)}[kind]
        if not ok:
            expected = {"int": "an integer", "float": "a finite number", "bool": "true or false",
                        "str": "a string", "dict": "an object", "list": "a list"}[kind]
            self.error(f"{key!r} must be {expected}, got {brief.repr(value)}")
        if kind == "int" and not -MAX_INT - 1 <= value <= MAX_INT:
            self.error(f"{key!r} must fit in 64 bits, got {brief.repr(value)}")
        if minimum is not None and value < minimum:
            self.error(f"{key!r} must be >= {minimum}, got {brief.repr(value)}")
        return float(value) if kind == "float" else value

    def positive_int(self, key: str, default=REQUIRED, **kw):
        return self.get(key, "int", default, minimum=1, **kw)

    def positive_float(self, key: str, default=REQUIRED):
        value = self.get(key, "float", default)
        if value is not None and value <= 0:
            self.error(f"{key!r} must be > 0, got {value!r}")
        return value

    def divides(self, a_key: str, a: int, b_key: str, b: int):
        """An error unless b divides a (a head count dividing a width, ...)."""
        if a % b:
            self.error(f"{a_key} ({a}) must be a multiple of {b_key} ({b})")

    def unread(self) -> dict:
        """The entries no get() has asked for, as they are."""
        return {k: v for k, v in self.raw.items() if k not in self.used}


def read_json_object(file: str, what: str) -> dict:
    """The JSON object in `file`; ValueError naming `what` and the file otherwise (not UTF-8,
    not JSON, nested too deeply, a key given twice in one object, not an object, above
    MAX_JSON_BYTES)."""
    with open(file, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_JSON_BYTES:
            raise ValueError(f"{what} {file!r}: {size} bytes exceeds the {MAX_JSON_BYTES}-byte "
                             "limit")
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:   # grew since fstat
        raise ValueError(f"{what} {file!r}: exceeds the {MAX_JSON_BYTES}-byte limit")
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} {file!r}: not valid UTF-8 JSON ({e!r})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} {file!r}: must be a JSON object, got {type(obj).__name__}")
    return obj


def read_config_json(path) -> tuple[dict, str]:
    """(raw dict, where) from a config.json file or a directory holding one."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config: no such file or directory: {path!r}")
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"config: the model directory {path!r} has no config.json")
    return read_json_object(file, "config"), repr(file)


def config_dict(config) -> dict:
    """The config.json dict of `config`: a mapping as it is; a config object's attributes
    (`to_dict()` when it has one, else its instance attributes) with the uninterpreted
    entries of its `extra` put back at the top level."""
    if isinstance(config, Mapping):
        return dict(config)
    values = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    extra = values.pop("extra", None) or {}
    return values | dict(extra)
