"""NAT behaviours (RFC 4787) and their discovery (RFC 5780-style probe)."""
