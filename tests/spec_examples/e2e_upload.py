import requests
import base64
import os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

def encrypt_file(file_path, password):
    with open(file_path, "rb") as f:
        plaintext = f.read()
    
    salt = os.urandom(16)
    iv = os.urandom(12)
    
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=32,
        salt=salt,
        iterations=100000,
        backend=default_backend()
    )
    key = kdf.derive(password.encode())
    
    aesgcm = AESGCM(key)
    ciphertext = aesgcm.encrypt(iv, plaintext, None)
    
    return salt, iv, ciphertext

salt, iv, ciphertext = encrypt_file("file.txt", "yourpassword")
salt_b64 = base64.b64encode(salt).decode()
iv_b64 = base64.b64encode(iv).decode()

url = "https://one.gy/upload"
files = {"files": ("file.enc", ciphertext, "application/octet-stream")}
data = {"e2e": "true", "e2e_salt": salt_b64, "e2e_iv": iv_b64}

response = requests.post(url, files=files, data=data)
print(response.json())
