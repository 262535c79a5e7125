"""The tenchat relay daemon: stores and forwards ciphertext, never sees a plaintext."""
