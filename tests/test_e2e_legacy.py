"""Legacy E2E (SPEC §3): the API documents' encrypt/decrypt scheme round-trips."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from starlette.testclient import TestClient
from tests.helpers import path_of


def derive(password: str, salt: bytes) -> bytes:
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(
        password.encode()
    )


def test_round_trip_with_base64_parameters(client: TestClient) -> None:
    salt, iv = os.urandom(16), os.urandom(12)
    plaintext = os.urandom(100_000)
    ciphertext = AESGCM(derive("pw", salt)).encrypt(iv, plaintext, None)
    response = client.post(
        "/upload",
        files={"files": ("file.enc", ciphertext, "application/octet-stream")},
        data={
            "e2e": "true",
            "e2e_salt": base64.b64encode(salt).decode(),
            "e2e_iv": base64.b64encode(iv).decode(),
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    encrypted = client.get(f"/f/{result['file_id']}/encrypted")
    assert encrypted.status_code == 200
    assert encrypted.content == ciphertext
    got_salt = bytes(int(b) for b in encrypted.headers["x-e2e-salt"].split(","))
    got_iv = bytes(int(b) for b in encrypted.headers["x-e2e-iv"].split(","))
    assert (got_salt, got_iv) == (salt, iv)
    assert AESGCM(derive("pw", got_salt)).decrypt(got_iv, encrypted.content, None) == plaintext
    assert client.get(path_of(result["download_url"])).content == ciphertext


def test_decimal_byte_parameters(client: TestClient) -> None:
    salt, iv = os.urandom(16), os.urandom(12)
    response = client.post(
        "/upload",
        files={"file": ("x.enc", b"ciphertext")},
        data={
            "e2e": "true",
            "e2e_salt": ",".join(map(str, salt)),
            "e2e_iv": ",".join(map(str, iv)),
        },
    )
    assert response.status_code == 200
    headers = client.get(f"/f/{response.json()['file_id']}/encrypted").headers
    assert headers["x-e2e-salt"] == ",".join(map(str, salt))
    assert headers["x-e2e-iv"] == ",".join(map(str, iv))


def test_encrypted_path_of_a_plain_file_serves_the_file(client: TestClient) -> None:
    response = client.post("/upload", files={"files": ("encrypted", b"plain")})
    assert client.get(f"/f/{response.json()['file_id']}/encrypted").content == b"plain"
