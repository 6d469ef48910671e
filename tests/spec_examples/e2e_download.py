import requests
import base64
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

def decrypt_file(ciphertext, password, salt_b64, iv_b64):
    salt = base64.b64decode(salt_b64)
    iv = base64.b64decode(iv_b64)
    
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=32,
        salt=salt,
        iterations=100000,
        backend=default_backend()
    )
    key = kdf.derive(password.encode())
    
    aesgcm = AESGCM(key)
    plaintext = aesgcm.decrypt(iv, ciphertext, None)
    return plaintext

url = "https://one.gy/f/{file_id}/encrypted"
password = "yourpassword"
salt_b64 = "YOUR_BASE64_SALT"
iv_b64 = "YOUR_BASE64_IV"

response = requests.get(url)
plaintext = decrypt_file(response.content, password, salt_b64, iv_b64)

with open("decrypted_file.txt", "wb") as f:
    f.write(plaintext)
