import requests

url = "https://one.gy/delete/{management_token}"
response = requests.post(url)
print(response.json())
