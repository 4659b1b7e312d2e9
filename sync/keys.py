"""Ed25519 keys for signed cloud commands, and `forecourt keys`.

The cloud signs every command with its private key; the station holds only the public key
(`[sync] cloud_public_key`) and verifies (CONTRACT section 4). A key file is PEM (what
`openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write) or the raw 32-byte key
in base64 on one line (what key vaults and web consoles often hand out).

`forecourt keys generate` and `forecourt keys sign` are for setting up a test cloud and for
sending a command by hand; a real cloud signs in its own code (docs/cloud-commands.md).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from domain.files import private_dir
from domain.model import rfc3339
from sync.envelope import VERSION, new_id

__all__ = [
    "KeyFileError",
    "command_envelope",
    "generate",
    "load_private_key",
    "load_public_key",
    "main",
    "public_key_text",
    "sign_command",
]

PRIVATE_NAME = "cloud.key"
PUBLIC_NAME = "cloud.pub"
DEFAULT_EXPIRES_IN = timedelta(minutes=5)
_RAW_KEY_BYTES = 32
_MAX_KEY_FILE = 16 * 1024  # a key file is a few hundred bytes; anything bigger is not one


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(path, f"cannot read the key file: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(path, "too large to be a key file")
    if not data.strip():
        raise KeyFileError(path, "the key file is empty")
    return data


def _raw(path: Path, data: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(
            path, "neither PEM (-----BEGIN ...) nor base64 of a raw 32-byte Ed25519 key"
        ) from None


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key in `path`: PEM, or the raw 32 bytes in base64 (the base64 of the
    44-byte DER form is taken too)."""
    path = Path(path)
    data = _read(path)
    if b"-----BEGIN" in data:
        if b"PRIVATE KEY" in data:
            raise KeyFileError(path, "holds a private key; give the station the public key only")
        try:
            key: object = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(path, f"not a readable PEM public key ({exc})") from None
    else:
        raw = _raw(path, data)
        try:
            if len(raw) == _RAW_KEY_BYTES:
                key = Ed25519PublicKey.from_public_bytes(raw)
            else:
                key = serialization.load_der_public_key(raw)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFileError(
                path, f"{len(raw)} bytes of base64 are not an Ed25519 public key (32 bytes)"
            ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(path, f"a {type(key).__name__} key, not Ed25519")
    return key


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path`: unencrypted PEM (PKCS#8), or the raw 32-byte seed in
    base64."""
    path = Path(path)
    data = _read(path)
    if b"-----BEGIN" in data:
        try:
            key: object = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise KeyFileError(path, "the private key is encrypted; give it unencrypted") from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(path, f"not a readable PEM private key ({exc})") from None
    else:
        raw = _raw(path, data)
        try:
            if len(raw) == _RAW_KEY_BYTES:
                key = Ed25519PrivateKey.from_private_bytes(raw)
            else:
                key = serialization.load_der_private_key(raw, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyFileError(
                path, f"{len(raw)} bytes of base64 are not an Ed25519 private key (32 bytes)"
            ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(path, f"a {type(key).__name__} key, not Ed25519")
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in base64: the one-line form a key file may hold."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never overwrite a key, a lost private key cannot be recovered.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # the umask may have taken bits away; set exactly what we mean


def generate(folder: str | Path) -> tuple[Path, Path]:
    """A new key pair as PEM in `folder` (created 0700): (cloud.key, mode 0600; cloud.pub, mode
    0644: the public key is meant to be copied to every station).

    Raises FileExistsError, writing nothing, when either file is already there.
    """
    folder = Path(folder)
    private_dir(folder)
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return private_path, public_path


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot put {type(value).__name__} in a command")


def command_envelope(
    station_id: str,
    type_: str,
    data: dict[str, Any],
    *,
    now: datetime,
    expires_in: timedelta = DEFAULT_EXPIRES_IN,
    id_: str | None = None,
) -> dict[str, Any]:
    """A command envelope; `data` gets `expires_at` = now + expires_in unless it has one."""
    body_data = dict(data)
    body_data.setdefault("expires_at", rfc3339(now + expires_in))
    return {
        "v": VERSION,
        "id": new_id(now) if id_ is None else id_,
        "type": type_,
        "station": station_id,
        "ts": rfc3339(now),
        "data": body_data,
    }


def sign_command(private_key: Ed25519PrivateKey, envelope: dict[str, Any]) -> bytes:
    """The MQTT payload of a command: `{"body": <envelope as JSON text>, "sig": <base64 Ed25519
    signature of the body's UTF-8 bytes>}`. The body is signed as the exact text sent, so no
    JSON canonicalisation is needed on either side."""
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    sig = private_key.sign(body.encode("utf-8"))
    payload = {"body": body, "sig": base64.b64encode(sig).decode("ascii")}
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


# --- forecourt keys


def _cmd_generate(args: argparse.Namespace) -> int:
    try:
        private_path, public_path = generate(args.out)
    except (FileExistsError, OSError) as exc:
        print(f"forecourt keys: {exc}", file=sys.stderr)
        return 1
    public = load_public_key(public_path)
    print(f"private key: {private_path} (keep it in the cloud; never on a station)")
    print(f"public key:  {public_path} (the stations' [sync] cloud_public_key)")
    print(f"public key, raw base64: {public_key_text(public)}")
    return 0


def _data_argument(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("--data must be a JSON object")
    return data


def _cmd_sign(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key)
    except KeyFileError as exc:
        print(f"forecourt keys: {exc}", file=sys.stderr)
        return 2
    try:
        data = _data_argument(args.data)
    except (OSError, ValueError) as exc:
        print(f"forecourt keys: bad --data: {exc}", file=sys.stderr)
        return 2
    if args.expires_in <= 0:
        print("forecourt keys: --expires-in must be a positive number of seconds", file=sys.stderr)
        return 2
    envelope = command_envelope(
        args.station,
        args.type,
        data,
        now=datetime.now(UTC),
        expires_in=timedelta(seconds=args.expires_in),
        id_=args.id,
    )
    sys.stdout.write(sign_command(key, envelope).decode("utf-8") + "\n")
    return 0


def _cmd_public(args: argparse.Namespace) -> int:
    try:
        key = load_public_key(args.key)
    except KeyFileError:
        try:
            key = load_private_key(args.key).public_key()
        except KeyFileError as exc:
            print(f"forecourt keys: {exc}", file=sys.stderr)
            return 2
    print(public_key_text(key))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecourt keys", description="Ed25519 keys for signed cloud commands"
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    gen = sub.add_parser("generate", help="a new key pair: cloud.key and cloud.pub")
    gen.add_argument("--out", required=True, help="folder to write them to (created if needed)")
    gen.set_defaults(func=_cmd_generate)

    sign = sub.add_parser("sign", help="print a signed command's MQTT payload")
    sign.add_argument("--key", required=True, help="the private key file")
    sign.add_argument("--station", required=True, help="the station id it is for")
    sign.add_argument("--type", required=True, help="order.create, price.schedule, ...")
    sign.add_argument("--data", required=True, help="the data as a JSON object, or @FILE")
    sign.add_argument(
        "--expires-in",
        type=int,
        default=int(DEFAULT_EXPIRES_IN.total_seconds()),
        help="seconds until it expires, unless data has expires_at (default 300)",
    )
    sign.add_argument("--id", default=None, help="the command id (default: a new UUID)")
    sign.set_defaults(func=_cmd_sign)

    public = sub.add_parser("public", help="print a key's public half as raw base64")
    public.add_argument("--key", required=True, help="a public or private key file")
    public.set_defaults(func=_cmd_public)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`forecourt keys ...`; argv is what follows `keys`. 0 done, 1 failed, 2 bad arguments."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
