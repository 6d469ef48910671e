import requests

url = "https://one.gy/f/{file_id}"
password = "yourpassword"  # omit if public

response = requests.get(url, params={"pw": password})
with open("downloaded_file.txt", "wb") as f:
    f.write(response.content)
