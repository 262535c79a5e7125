"""End-to-end encryption: X3DH, the Double Ratchet, safety numbers, on libsodium."""
