# make venv: set up .venv (the targets below use it); make run: the daemon in the foreground; make lint: ruff (format
# and lint) and mypy; make test: lint, then every test (after npm-deps: the npm socket.io-client the Socket.IO tests
# drive, and axe-core for the page's accessibility test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

CHROMIUM := /usr/bin/chromium

.PHONY: venv run lint test system-deps npm-deps clean

venv: $(VENV)/.installed

# The versions pinned in constraints.txt (the set last tested together), in an editable install in "compat" mode:
# twistd finds twisted/plugins/chatd.py only on a real sys.path entry.
# Then Twisted's plugin caches (dropin.cache), built where the plugins are: a read-only install cannot write them.
$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -m chatdaemon.plugin_cache
	touch $@

run: venv
	$(BIN)/twistd -n --pidfile= chatd --data-dir var

# Formatting, lint and types (mypy with the mypy-zope plugin; configured in pyproject.toml): an error stops `make test`.
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: venv lint system-deps npm-deps
	$(BIN)/python -m pytest tests

# Some tests drive real clients from Debian: the web page's (Chromium, through the playwright package of the
# test extra; never `playwright install`), the admin shell's (the OpenSSH client), IRC's (irssi, in tmux) and
# Node.js with npm for the npm packages below.
# Installed once, quietly, if missing and apt-get can run as root; else those tests are skipped and pytest's
# summary says why (with CI=true, the IRC one fails).
system-deps:
	@missing=""; [ -x $(CHROMIUM) ] || missing=" chromium"; command -v ssh >/dev/null || missing="$$missing openssh-client"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	for tool in irssi tmux; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  log=$${TMPDIR:-/tmp}/chatd-system-deps.log; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing$$missing for the tests (log: $$log)"; \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; } >$$log 2>&1 \
	      || echo "make: could not install$$missing (see $$log); the tests that need them will be skipped"; \
	  else \
	    echo "make: missing$$missing, and no apt-get as root to install it; the tests that need them will be skipped"; \
	  fi; \
	fi

# The Socket.IO tests drive the real npm socket.io-client, and the page's accessibility test injects axe-core
# (tests/js, pinned by its package-lock.json). Without npm (system-deps installs it where it can) they are skipped
# with the reason, and fail when CI=true.
npm-deps:
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error; \
	else \
	  echo "make: *** NO npm: the tests that drive the npm socket.io-client (test_socketio_protocol.py, test_socketio_chat.py, the Socket.IO parts of test_throttle.py and test_shutdown_notice.py) and the page's accessibility test WILL BE SKIPPED ***"; \
	fi

clean:
	rm -rf $(VENV) tests/js/node_modules var build *.egg-info twisted/plugins/dropin.cache
