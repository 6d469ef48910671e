"""The cloud drive: folders (folders.py), listings and search (listing.py), the trash
(trash.py), drive files (files.py) and what shared folders show (sharing.py).

Drive files are rows of ``files`` with an owner and ``is_temp`` false; folders live in their
own table. Everything is scoped by owner: another user's ids are "not found".
"""
