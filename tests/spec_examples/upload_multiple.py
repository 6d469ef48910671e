import requests

url = "https://one.gy/upload"
files = [
    ("files", open("file1.txt", "rb")),
    ("files", open("file2.pdf", "rb")),
]

response = requests.post(url, files=files)
print(response.json())
