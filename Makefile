# The two commands of the README, and the stages behind them.
.PHONY: demo test emulator sanity units integration lint docs changelog build bench venv

demo:  ## a real playbook run against the local emulator
	@tools/demo.sh

test:  ## every test: emulator, sanity, units, integration, lint, docs, changelog, build
	@tools/test.sh

emulator sanity units integration lint docs changelog build:
	@tools/test.sh $@

bench:  ## benchmarks that print figures
	@tools/bench.sh

venv:
	@bash -c 'source tools/common.sh && ensure_venv'
