from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import keys
from sync.keys import KeyFileError, load_private_key, load_public_key, sign_command

# RFC 8032 section 7.1, TEST 1: a key pair and a signature fixed by the specification.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# The same public key as `openssl pkey -pubout` writes it (SubjectPublicKeyInfo, RFC 8410).
RFC8032_PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n"
)


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def test_a_pem_public_key_from_the_rfc_verifies_the_rfcs_signature(tmp_path: Path) -> None:
    key = load_public_key(_write(tmp_path / "cloud.pub", RFC8032_PUBLIC_PEM))
    key.verify(RFC8032_SIGNATURE, b"")
    assert keys.public_key_text(key) == base64.b64encode(RFC8032_PUBLIC).decode()


def test_a_raw_base64_public_key(tmp_path: Path) -> None:
    text = base64.b64encode(RFC8032_PUBLIC).decode() + "\n"
    key = load_public_key(_write(tmp_path / "cloud.pub", text))
    key.verify(RFC8032_SIGNATURE, b"")


def test_the_base64_of_the_der_form_is_taken_too(tmp_path: Path) -> None:
    der = base64.b64decode("MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    key = load_public_key(_write(tmp_path / "cloud.pub", base64.b64encode(der)))
    key.verify(RFC8032_SIGNATURE, b"")


def test_a_raw_base64_private_key_signs_as_the_rfc_says(tmp_path: Path) -> None:
    key = load_private_key(_write(tmp_path / "cloud.key", base64.b64encode(RFC8032_SECRET)))
    assert key.sign(b"") == RFC8032_SIGNATURE


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("not a key at all!", "neither PEM"),
        (base64.b64encode(b"\x01" * 31).decode(), "31 bytes"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a readable PEM"),
    ],
)
def test_bad_public_key_files_say_what_is_wrong(tmp_path: Path, content: str, problem: str) -> None:
    path = _write(tmp_path / "cloud.pub", content)
    with pytest.raises(KeyFileError, match=problem) as raised:
        load_public_key(path)
    assert str(path) in str(raised.value)


def test_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_public_key(tmp_path / "nope.pub")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path / "nope.key")


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pub = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFileError, match="not Ed25519"):
        load_public_key(_write(tmp_path / "ec.pub", pub))
    private = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="not Ed25519"):
        load_private_key(_write(tmp_path / "ec.key", private))


def test_a_private_key_is_not_taken_as_the_stations_public_key(tmp_path: Path) -> None:
    private, _ = keys.generate(tmp_path)
    with pytest.raises(KeyFileError, match="private key"):
        load_public_key(private)


def test_an_encrypted_private_key_is_refused(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(KeyFileError, match="encrypted"):
        load_private_key(_write(tmp_path / "enc.key", pem))


def test_generate_writes_a_pair_with_safe_modes(tmp_path: Path) -> None:
    private_path, public_path = keys.generate(tmp_path / "new")
    assert (private_path.name, public_path.name) == ("cloud.key", "cloud.pub")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    assert private_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    private, public = load_private_key(private_path), load_public_key(public_path)
    public.verify(private.sign(b"x"), b"x")


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    private_path, _ = keys.generate(tmp_path)
    before = private_path.read_bytes()
    with pytest.raises(FileExistsError):
        keys.generate(tmp_path)
    assert private_path.read_bytes() == before


def test_sign_command_payload_verifies_over_the_exact_body() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = {
        "v": 1,
        "id": "c-1",
        "type": "order.cancel",
        "station": "S1",
        "ts": "2026-11-22T09:15:00+08:00",
        "data": {"order_id": "A-1", "note": "加油", "expires_at": "2026-11-22T09:20:00+08:00"},
    }
    payload = json.loads(sign_command(key, envelope))
    assert set(payload) == {"body", "sig"}
    assert json.loads(payload["body"]) == envelope
    signature = base64.b64decode(payload["sig"], validate=True)
    key.public_key().verify(signature, payload["body"].encode("utf-8"))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, payload["body"].replace("A-1", "A-2").encode())


def test_command_envelope_adds_expires_at_unless_given() -> None:
    now = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)
    envelope = keys.command_envelope(
        "S1", "order.cancel", {"order_id": "A-1"}, now=now, expires_in=timedelta(seconds=300)
    )
    assert envelope["data"] == {"order_id": "A-1", "expires_at": "2026-11-22T01:20:00+00:00"}
    assert (envelope["v"], envelope["type"], envelope["station"]) == (1, "order.cancel", "S1")
    given = {"order_id": "A-1", "expires_at": "2026-11-22T02:00:00+00:00"}
    assert keys.command_envelope("S1", "x", given, now=now)["data"] == given


def test_sign_writes_decimals_as_strings() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = {"v": 1, "data": {"paid": Decimal("100.00")}}
    body = json.loads(json.loads(sign_command(key, envelope))["body"])
    assert body["data"]["paid"] == "100.00"


# --- forecourt keys


def test_cli_generate_then_sign_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys.main(["generate", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    public = load_public_key(tmp_path / "k" / "cloud.pub")
    assert keys.public_key_text(public) in out

    data = '{"order_id": "A-1"}'
    argv = [
        "sign",
        "--key",
        str(tmp_path / "k" / "cloud.key"),
        "--station",
        "XJ-URC-0001",
        "--type",
        "order.cancel",
        "--data",
        data,
        "--expires-in",
        "600",
        "--id",
        "c-7",
    ]
    before = datetime.now(UTC)
    assert keys.main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    public.verify(base64.b64decode(payload["sig"]), payload["body"].encode("utf-8"))
    body = json.loads(payload["body"])
    assert (body["v"], body["id"], body["type"], body["station"]) == (
        1,
        "c-7",
        "order.cancel",
        "XJ-URC-0001",
    )
    assert body["data"]["order_id"] == "A-1"
    expires = datetime.fromisoformat(body["data"]["expires_at"])
    assert before + timedelta(seconds=599) <= expires <= datetime.now(UTC) + timedelta(seconds=601)

    assert keys.main(["public", "--key", str(tmp_path / "k" / "cloud.key")]) == 0
    assert capsys.readouterr().out.strip() == keys.public_key_text(public)


def test_cli_reads_data_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, _ = keys.generate(tmp_path)
    data = _write(tmp_path / "data.json", '{"what": "totals"}')
    assert (
        keys.main(
            [
                "sign",
                "--key",
                str(private),
                "--station",
                "S1",
                "--type",
                "data.request",
                "--data",
                f"@{data}",
            ]
        )
        == 0
    )
    body = json.loads(json.loads(capsys.readouterr().out)["body"])
    assert body["data"]["what"] == "totals"


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, _ = keys.generate(tmp_path)
    base = ["sign", "--station", "S1", "--type", "x"]
    assert keys.main([*base, "--key", str(tmp_path / "none"), "--data", "{}"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert keys.main([*base, "--key", str(private), "--data", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert keys.main([*base, "--key", str(private), "--data", "{", "--expires-in", "5"]) == 2
    assert keys.main([*base, "--key", str(private), "--data", "{}", "--expires-in", "0"]) == 2
    assert keys.main(["generate", "--out", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert keys.main(["nonsense"]) == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_keys_and_signatures_made_by_openssl(tmp_path: Path) -> None:
    # The commands docs/cloud-commands.md gives the cloud team.
    def openssl(*args: str) -> bytes:
        return subprocess.run(
            ["openssl", *args], check=True, capture_output=True, cwd=tmp_path, timeout=30
        ).stdout

    openssl("genpkey", "-algorithm", "ed25519", "-out", "cloud.key")
    openssl("pkey", "-in", "cloud.key", "-pubout", "-out", "cloud.pub")
    body = '{"v":1,"id":"c-1","data":{"note":"加油"}}'
    (tmp_path / "body.json").write_bytes(body.encode("utf-8"))
    signature = openssl("pkeyutl", "-sign", "-inkey", "cloud.key", "-rawin", "-in", "body.json")
    load_public_key(tmp_path / "cloud.pub").verify(signature, body.encode("utf-8"))
    # And the other way round: what we sign, openssl verifies.
    ours = load_private_key(tmp_path / "cloud.key").sign(body.encode("utf-8"))
    assert ours == signature  # Ed25519 is deterministic (RFC 8032)
