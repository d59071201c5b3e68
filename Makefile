# make venv: set up .venv (both targets below use it); make run: the daemon in the foreground; make test: every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv run test clean

venv: $(VENV)/.installed

# An editable install in "compat" mode: twistd finds twisted/plugins/chatd.py only on a real sys.path entry.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

run: venv
	$(BIN)/twistd -n --pidfile= chatd --data-dir var

test: venv
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) var build *.egg-info twisted/plugins/dropin.cache
