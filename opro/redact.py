"""One redaction for every text the project writes: the API key in use and URL credentials become MARKER.

Results folders are shared and committed, so run files (config.json, the logs, summary.json), group.json,
sweep.json (tracebacks included), the LLM and score caches and the one-line errors all pass through `redact`
(or `redact_data` for a record before it is serialized). What is masked:
- every key in use: `$OPENAI_API_KEY` and each key an LLM of this process was given (`remember`);
- URL credentials: the user:password of `scheme://user:password@host`, and the value of a query parameter
  whose name holds key, token, secret, password, signature or credential, or is auth, sig or code
  (`?api_key=...`).
Values shorter than MIN_SECRET characters are not taken for keys (masking "x" would garble every text).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

MARKER = "***"
#: Environment variables that hold API keys.
KEY_VARIABLES = ("OPENAI_API_KEY",)
#: The shortest value masked as a key.
MIN_SECRET = 8
_SENSITIVE = ("key", "token", "secret", "passw", "pwd", "signature", "credential", "authorization")
_SENSITIVE_NAMES = ("auth", "sig", "code")
# Bounded repeats, no nesting: linear in the text.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^\s/?#@\"'<>]{1,512}@")
_QUERY = re.compile(r"([?&;])([A-Za-z0-9_.\-\[\]%]{1,64})=([^&#\s\"'<>]*)")
_remembered: set[str] = set()  # keys handed to LLMs in this process: they must not reach a file either


def remember(secret: str | None) -> None:
    """Mask `secret` (a key an LLM uses, a password in its URL) in everything this process writes."""
    if secret and len(secret) >= MIN_SECRET:
        _remembered.add(secret)


def secrets() -> list[str]:
    """The keys masked now, longest first (so that a key holding another is masked whole)."""
    found = set(_remembered)
    found.update(value for name in KEY_VARIABLES if len(value := os.environ.get(name, "")) >= MIN_SECRET)
    return sorted(found, key=len, reverse=True)


def url_credentials(url: str | None) -> list[str]:
    """The credentials in `url` that `redact` masks: the userinfo's password (or user), the values of
    sensitive query parameters."""
    parts = urlsplit(url or "")
    found = [parts.password or parts.username or ""]
    found += [m.group(3) for m in _QUERY.finditer("?" + parts.query) if _query_value(m) != m.group(0)]
    return [value for value in found if value]


def redact(text: str) -> str:
    """`text` with every key in use and every URL credential replaced by MARKER."""
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, MARKER)
    if "://" in text:
        text = _USERINFO.sub(lambda m: f"{m.group(1)}{MARKER}@", text)
    if "=" in text:
        text = _QUERY.sub(_query_value, text)
    return text


def redact_data(value: Any) -> Any:
    """A JSON-like record with `redact` applied to every string in it (keys of dicts too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def _query_value(match: re.Match[str]) -> str:
    name = match.group(2).lower()
    sensitive = name in _SENSITIVE_NAMES or any(word in name for word in _SENSITIVE)
    if match.group(3) in ("", MARKER) or not sensitive:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}={MARKER}"
