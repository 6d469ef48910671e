async function encryptAndUpload(file, password) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const keyMaterial = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits", "deriveKey"]
  );
  const key = await crypto.subtle.deriveKey(
    { "name": "PBKDF2", salt, "iterations": 100000, "hash": "SHA-256" },
    keyMaterial, { "name": "AES-GCM", "length": 256 }, false, [ "encrypt" ]
  );
  const encryptedContent = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv }, key, await file.arrayBuffer()
  );
  const encryptedBlob = new Blob([encryptedContent]);
  const saltB64 = btoa(String.fromCharCode(...salt));
  const ivB64 = btoa(String.fromCharCode(...iv));

  const formData = new FormData();
  formData.append("files", encryptedBlob, file.name + ".enc");
  formData.append("e2e", "true");
  formData.append("e2e_salt", saltB64);
  formData.append("e2e_iv", ivB64);

  const response = await fetch("/upload", { method: "POST", body: formData });
  return response.json();
}
