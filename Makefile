# The two commands of the README, and the stages and tools behind them.
.PHONY: demo test serve bench release docs-site venv emulator sanity units installable integration style lint docs changelog collection-docs build eda examples ee

demo:  ## a real playbook run against the local emulator
	@tools/demo.sh

test:  ## every test, on every ansible-core of the matrix
	@tools/test.sh

serve:  ## the hzel API emulator in the foreground, from the project's venv (PORT=8080)
	@tools/serve.sh $(PORT)

bench:  ## benchmarks that print figures
	@tools/bench.sh

release:  ## make release VERSION=x.y.z: version, CHANGELOG.rst, tarball in dist/
	@tools/release.sh $(VERSION)

docs-site:  ## the collection's HTML docsite in docs/site/build/html
	@tools/docs_site.sh docs/site

venv:
	@bash -c 'source tools/common.sh && ensure_venv'

# One stage of the suite (matrix stages run on every core; 'tools/test.sh sanity@2.17.14' picks one).
emulator sanity units installable integration style lint docs changelog collection-docs build eda examples ee:
	@tools/test.sh $@
