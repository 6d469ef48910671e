import requests

url = "https://one.gy/manage/{management_token}"
data = {
    "public": "on",        # or omit to make private
    "password": "secret",  # optional
    "expires": "7d"        # 30m, 6h, 1d, 3d, 7d
}

response = requests.post(url, data=data)
print(response.json())
