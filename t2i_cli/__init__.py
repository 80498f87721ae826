"""The `t2i` command line, above the library and the applications.

`t2i_cli.commands` parses the command line and hands each subcommand to the
package that does the work: `training` (train, evaluate, sharpen train),
`export` (export), `serving` (serve, client) and the `t2i` library itself
(generate). Nothing imports this package, so the library (`t2i`) never depends
on the applications built on it. `python -m t2i_cli` runs it without the
installed `t2i` command.
"""

from t2i_cli.commands import main

__all__ = ["main"]
