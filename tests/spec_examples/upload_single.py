import requests

url = "https://one.gy/upload"
files = {
    "files": open("file.txt", "rb"),
}

response = requests.post(url, files=files)
print(response.json())
