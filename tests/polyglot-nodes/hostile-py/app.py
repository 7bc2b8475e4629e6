"""A hostile Python node: `config.attack` picks what it tries; the sandbox must stop each one."""

from kettle import node


@node
def run(ctx, state: dict) -> dict:
    attack = ctx.config.get("attack")
    if attack == "memory":
        # Twice the 256 MiB store limit, in one allocation.
        hoard = bytearray(512 * 1024 * 1024)
        return {"allocated": len(hoard)}
    if attack == "file":
        with open("/etc/passwd") as escaped:
            return {"leaked": escaped.read()}
    if attack == "connect":
        import socket

        with socket.create_connection(("127.0.0.1", state["port"]), timeout=5) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return {"fetched": connection.recv(1024).decode()}
    if attack == "spin":
        while True:
            pass
    raise ValueError(f"unknown attack {attack!r}")
