"""`python -m codegen_eval` runs the CLI."""

from codegen_eval.cli import main

main()
