# Registers `optimum-cli bengali ...` (optimum loads every module in this namespace package).
from optimum_bengali.commands import BengaliCommand

REGISTER_COMMANDS = [BengaliCommand]
