"""`python -m app.cli ...`: the same as `rac ...`."""

from app.cli import main

main()
