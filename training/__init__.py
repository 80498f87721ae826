"""Training and evaluation entry points (library functions behind the `t2i` command)."""
