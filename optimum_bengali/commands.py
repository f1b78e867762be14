"""``optimum-cli bengali ...``: the same commands as ``optimum-bengali``, registered with optimum's CLI
through ``optimum/commands/register/register_bengali.py``."""

from __future__ import annotations

from optimum.commands.base import BaseOptimumCLICommand, CommandInfo

from .cli import COMMANDS, one_line_errors, run_command


def _leaf(name: str) -> type:
    help_text, add, run = COMMANDS[name]

    class Leaf(BaseOptimumCLICommand):
        COMMAND = CommandInfo(name=name, help=help_text)

        @staticmethod
        def parse_args(parser) -> None:
            one_line_errors(parser)
            add(parser)

        def run(self) -> None:
            code = run_command(run, self.args)  # the same error handling as `optimum-bengali`
            if code:
                raise SystemExit(code)

    Leaf.__name__ = f"Bengali{name.capitalize()}Command"
    return Leaf


class BengaliCommand(BaseOptimumCLICommand):
    """``optimum-cli bengali``: compress Bengali text classifiers with recipes."""

    COMMAND = CommandInfo(name="bengali", help="Compress Bengali text classifiers with optimum-bengali recipes.")
    SUBCOMMANDS = tuple(CommandInfo(name=n, help=COMMANDS[n][0], subcommand_class=_leaf(n)) for n in COMMANDS)
