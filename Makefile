# The two commands at the top of README.md, for those who prefer make; both work without it:
#   make quickstart  = bash scripts/quickstart.sh  (set up .venv, data, train, eval, plot)
#   make test        = bash .ci/run                (set up a fresh .venv, run the tests, as CI)
.PHONY: quickstart test

quickstart:
	bash scripts/quickstart.sh

test:
	bash .ci/run
