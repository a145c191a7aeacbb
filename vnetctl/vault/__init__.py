"""Ansible vault: encrypted files and `!vault` values, decrypted on the controller.

cipher.py: the format (1.1, 1.2) and its AES256 cipher; keyring.py: the passwords of a
run and where they come from; values.py: what decrypted data becomes (secrets).
"""
