"""Small shared helpers: UTC time, ids, key hashing and signing, cursor pagination."""
